"""Fleet: one image rolled out to N = 10, 50, 200 apps (10 and 50 with --quick) by the
`fleet-deploy` flow, under a quota scaled up so the run stays short: the sandbox throttles SAE
calls at QUOTA_CALLS per QUOTA_WINDOW seconds per account (`Throttling.User` beyond), and the
account's Prefect rate limit is set to the same quota before the run (as its operator would: a
run leaves an existing limit as it is).

Reported: SAE calls per minute (between the first and the last SAE call) against the quota
bound, apps that did not land, calls the sandbox throttled, the wall time, and how far that wall
time is from the quota floor (the run's SAE calls at the quota bound; 1.0x is the best possible).
The baseline deploys the same apps one after another (bench/baseline.py, fixed 3 s polling),
with no rate limit of its own; it is measured for N up to BASELINE_MAX and, being sequential,
scales linearly, so for larger N its wall time is the measured per-app time times N (marked).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from bench import baseline
from bench.common import Cloud, Entry, Figure, clouds, demo_spec, fmt, parallel

SIZES = (10, 50, 200)
QUOTA_CALLS = 600
QUOTA_WINDOW = 30.0
CHANGE_ORDER_SECONDS = 1.0
BASELINE_MAX = 10


def app_names(n: int) -> list[str]:
    return [f"fleet-app-{i:03d}" for i in range(n)]


def fleet_data(cloud: Cloud, n: int) -> dict[str, Any]:
    return {
        "name": f"bench{n}",
        "accounts": cloud.blocks(),
        "image": {
            "url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1",
            "instance_id": "cri-demo",
        },
        "defaults": {
            "region": "cn-hangzhou",
            "namespace": "cn-hangzhou:demo",
            "cpu": 500,
            "memory": 1024,
            "replicas": 1,
        },
        "apps": [{"name": name} for name in app_names(n)],
    }


def sae_rate_per_minute(log: list[Entry]) -> float:
    """SAE calls per minute between the first and the last SAE call."""
    times = sorted(float(e["received_at"]) for e in log if e["product"] == "sae")
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return 60.0 * (len(times) - 1) / span if span else 0.0


def sae_calls(log: list[Entry]) -> int:
    return sum(1 for e in log if e["product"] == "sae")


def floor_ratio(wall: float, log: list[Entry]) -> str:
    """Wall time over the quota floor: the time the run's SAE calls take at the quota bound."""
    floor = sae_calls(log) * QUOTA_WINDOW / QUOTA_CALLS
    return f"{wall / floor:.1f}x ({sae_calls(log)} calls, floor {fmt(floor)} s)" if floor else "-"


def throttled(log: list[Entry]) -> int:
    return sum(1 for e in log if e.get("code") == "Throttling.User")


def _ours(cloud: Cloud, n: int) -> tuple[float, int, list[Entry]]:
    from crossdeploy.fleet_spec import parse_fleet
    from crossdeploy.quota import Quota, limit_name, set_limit
    from flows.fleet_deploy import FleetError, FleetResult, fleet_deploy
    from sandbox.world import load_world

    fleet = parse_fleet(fleet_data(cloud, n), "bench fleet")
    uid = load_world().account("app").uid
    set_limit(limit_name(uid, "cn-hangzhou"), Quota(QUOTA_CALLS, QUOTA_WINDOW))
    started = time.monotonic()
    state = fleet_deploy(
        fleet=fleet,
        quota_calls=QUOTA_CALLS,
        quota_window_seconds=QUOTA_WINDOW,
        return_state=True,
    )
    wall = time.monotonic() - started
    outcome = state.result(raise_on_failure=False)
    # some apps did not land: count those, not the whole fleet
    result = outcome.result if isinstance(outcome, FleetError) else outcome
    failed = len(result.failed) if isinstance(result, FleetResult) else n
    return wall, failed, cloud.admin.requests()


def _base(cloud: Cloud, n: int) -> tuple[float, int, list[Entry]]:
    poll = baseline.fixed_polling(3.0)
    started, failed = time.monotonic(), 0
    for name in app_names(n):
        spec = demo_spec(cloud, name, app={"cpu": 500, "memory": 1024, "replicas": 1})
        if baseline.deploy(cloud, spec, poll).status not in (2, None):
            failed += 1
    return time.monotonic() - started, failed, cloud.admin.requests()


def run(quick: bool = False) -> list[Figure]:
    sizes = SIZES[:2] if quick else SIZES
    bound = QUOTA_CALLS * 60.0 / QUOTA_WINDOW
    figures: list[Figure] = []
    per_app, b_rate = 0.0, 0.0
    for n in sizes:
        measured = n <= BASELINE_MAX
        names = (f"fleet-{n}-flow", f"fleet-{n}-base") if measured else (f"fleet-{n}-flow",)
        with clouds(*names, change_order_seconds=CHANGE_ORDER_SECONDS) as started:
            for cloud in started:
                cloud.admin.set_timing(minute_seconds=1.0)
                cloud.admin.set_faults(
                    {
                        "product": "sae",
                        "throttle_per_minute": QUOTA_CALLS,
                        "window_seconds": QUOTA_WINDOW,
                    }
                )
            jobs = [partial(_ours, started[0], n)]
            if measured:
                jobs.append(partial(_base, started[1], n))
            results = parallel(jobs)
        o_wall, o_failed, o_log = results[0]
        if measured:
            b_wall, b_failed, b_log = results[1]
            per_app = b_wall / n
            b_rate, b_throttled = sae_rate_per_minute(b_log), throttled(b_log)
            b_wall_text, b_fail_text = fmt(b_wall), f"{b_failed} ({b_throttled} throttled)"
            b_floor_text = floor_ratio(b_wall, b_log)
        else:
            b_wall_text = f"{fmt(per_app * n)} (est.)"
            b_fail_text = b_floor_text = "-"
        name = f"fleet N={n}"
        figures += [
            Figure(name, "wall time, s", fmt(o_wall), b_wall_text),
            Figure(
                name,
                "wall time / quota floor",
                floor_ratio(o_wall, o_log),
                b_floor_text,
                "floor: the run's SAE calls at the quota bound",
            ),
            Figure(
                name,
                "SAE calls/min (quota bound)",
                f"{sae_rate_per_minute(o_log):.0f} ({bound:.0f})",
                f"{b_rate:.0f} ({bound:.0f})",
                f"quota {QUOTA_CALLS} per {QUOTA_WINDOW:.0f} s, flow and sandbox",
            ),
            Figure(
                name,
                "apps failed (calls throttled)",
                f"{o_failed} ({throttled(o_log)} throttled)",
                b_fail_text,
                "failures must be 0",
            ),
        ]
    return figures
