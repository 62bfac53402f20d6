"""Fleet: one image rolled out to many apps by the `fleet-deploy` flow, in two scenarios.

**At SAE's quota** (N = REAL_N apps, 1-second change orders): the sandbox throttles SAE calls
as SAE does, at most 60 in any 60 s per account (`Throttling.User` beyond; the sandbox keeps
the times of the calls it let through and refuses one when the window ending now already
holds 60), and the account's Prefect rate limit is set to the same quota before the run (as
its operator would: a run leaves an existing limit as it is). The floor is the run's SAE calls
at the quota's rate, about two minutes. Figures:

- *SAE calls/min over the quota*: the SAE calls between the first and the last one, per
  minute, over 60 (target >= 0.9: what the pacing achieves while calls are waiting);
- *busiest 60 s*: the most SAE calls the sandbox received in any 60 s (never above 60);
- *Prefect slot asks (refused)*: the rate limit's increment requests this process sent during
  the run, and how many the server refused (423): each refusal restarts the limit's decay, so
  few should be (crossdeploy/quota.py);
- *apps failed (calls throttled)*: apps that did not land, and calls refused with
  `Throttling.User` (both must be 0);
- *wall time / quota floor*: the flow's wall time over the floor (1.0x is the best possible);
- *before the first / after the last SAE call, s*: the flow's start (Prefect flow run,
  both identities, the permission preflight, the limit) and its end, which the floor leaves out;
- *CPU s per app* and *peak RSS, MiB*: as for the scaled quota (below).

**At a scaled quota** (N = 10, 50, 200; 10 and 50 with --quick): SCALED_CALLS per SCALED_WINDOW
seconds (1,200 a minute), so the run stays short and the quota is not the limit: what limits it
is this machine. Figures: wall time; wall time over the quota floor; SAE calls per minute
against the quota bound; apps failed and calls throttled; and for N above BASELINE_MAX (where
the flow runs alone) what it costs: *CPU s per app*, user + system time of this process (the
flows and their Prefect client), the Prefect server process and the sandbox process during the
run, divided by N; *peak RSS, MiB*, the largest resident memory of the three together, each
one's own peak beside it (bench/usage.py samples /proc every 0.2 s).

The baseline deploys the same apps one after another (bench/baseline.py, fixed 3 s polling),
with no rate limit of its own; it is measured for N up to BASELINE_MAX at the scaled quota
and, being sequential, scales linearly, so for larger N its wall time is the measured per-app
time times N (marked). At SAE's quota it has no pacing to compare (it would be throttled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench import baseline
from bench.common import Cloud, Entry, Figure, clouds, demo_spec, fmt, parallel
from bench.usage import Usage, measured

REAL_N = 20
REAL_CALLS = 60
REAL_WINDOW = 60.0
SIZES = (10, 50, 200)
SCALED_CALLS = 600
SCALED_WINDOW = 30.0
QUOTA_CALLS, QUOTA_WINDOW = SCALED_CALLS, SCALED_WINDOW  # the scaled quota, by its old names
CHANGE_ORDER_SECONDS = 1.0
BASELINE_MAX = 10


def app_names(n: int) -> list[str]:
    return [f"fleet-app-{i:03d}" for i in range(n)]


def fleet_data(accounts: dict[str, str], name: str, apps: list[str]) -> dict[str, Any]:
    """The demo image and namespace, one replica of the smallest size, for each of `apps`;
    `accounts`: the `app` and `registry` block names."""
    return {
        "name": name,
        "accounts": accounts,
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
        "apps": [{"name": app} for app in apps],
    }


def sae_times(log: list[Entry]) -> list[float]:
    return sorted(float(e["received_at"]) for e in log if e["product"] == "sae")


def sae_rate_per_minute(log: list[Entry]) -> float:
    """SAE calls per minute between the first and the last SAE call."""
    times = sae_times(log)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return 60.0 * (len(times) - 1) / span if span else 0.0


def sae_calls(log: list[Entry]) -> int:
    return sum(1 for e in log if e["product"] == "sae")


def busiest(log: list[Entry], window: float) -> int:
    """The most SAE calls received in any `window` seconds (a closed interval: the strict
    reading of "at most N in any window")."""
    times, most, first = sae_times(log), 0, 0
    for last, at in enumerate(times):
        while at - times[first] > window:
            first += 1
        most = max(most, last - first + 1)
    return most


def floor_seconds(
    log: list[Entry], calls: int = SCALED_CALLS, window: float = SCALED_WINDOW
) -> float:
    """The time the run's SAE calls take at the quota's rate."""
    return sae_calls(log) * window / calls


def floor_ratio(
    wall: float, log: list[Entry], calls: int = SCALED_CALLS, window: float = SCALED_WINDOW
) -> str:
    """Wall time over the quota floor: the time the run's SAE calls take at the quota bound."""
    floor = floor_seconds(log, calls, window)
    return f"{wall / floor:.2f}x ({sae_calls(log)} calls, floor {fmt(floor)} s)" if floor else "-"


def throttled(log: list[Entry]) -> int:
    return sum(1 for e in log if e.get("code") == "Throttling.User")


@dataclass(frozen=True)
class Run:
    """One fleet run: wall time, apps that did not land, the sandbox's log, when it started and
    ended (epoch seconds, as the log's), and what it used."""

    wall: float
    failed: int
    log: list[Entry]
    started: float
    ended: float
    usage: Usage
    asked: int = 0
    refused: int = 0


def _ours(cloud: Cloud, n: int, calls: int, window: float) -> Run:
    from crossdeploy.fleet_spec import parse_fleet
    from crossdeploy.quota import Quota, asks, limit_name, set_limit
    from flows.fleet_deploy import FleetError, FleetResult, fleet_deploy
    from sandbox.world import load_world

    fleet = parse_fleet(fleet_data(cloud.blocks(), f"bench{n}", app_names(n)), "bench fleet")
    name = limit_name(load_world().account("app").uid, "cn-hangzhou")
    set_limit(name, Quota(calls, window))
    asked_before, refused_before = asks(name)
    with measured() as usage:
        started, began = time.time(), time.monotonic()
        state = fleet_deploy(
            fleet=fleet, quota_calls=calls, quota_window_seconds=window, return_state=True
        )
        wall, ended = time.monotonic() - began, time.time()
    outcome = state.result(raise_on_failure=False)
    # some apps did not land: count those, not the whole fleet
    result = outcome.result if isinstance(outcome, FleetError) else outcome
    failed = len(result.failed) if isinstance(result, FleetResult) else n
    asked, refused = asks(name)
    log = cloud.admin.requests()
    return Run(
        wall, failed, log, started, ended, usage, asked - asked_before, refused - refused_before
    )


def _base(cloud: Cloud, n: int) -> tuple[float, int, list[Entry]]:
    poll = baseline.fixed_polling(3.0)
    started, failed = time.monotonic(), 0
    for name in app_names(n):
        spec = demo_spec(cloud, name, app={"cpu": 500, "memory": 1024, "replicas": 1})
        if baseline.deploy(cloud, spec, poll).status not in (2, None):
            failed += 1
    return time.monotonic() - started, failed, cloud.admin.requests()


def _throttle(cloud: Cloud, calls: int, window: float) -> None:
    cloud.admin.set_timing(minute_seconds=1.0)
    cloud.admin.set_faults(
        {"product": "sae", "throttle_per_minute": calls, "window_seconds": window}
    )


def _cost(name: str, run: Run, n: int) -> list[Figure]:
    return [
        Figure(
            name,
            "CPU s per app: all (by process)",
            run.usage.cpu_text(per=n),
            "-",
            "user + system, during the run",
        ),
        Figure(name, "peak RSS, MiB: all (by process)", run.usage.memory_text(), "-"),
    ]


def real_quota() -> list[Figure]:
    """N = REAL_N apps at SAE's own quota, 60 SAE calls in any 60 s."""
    with clouds("fleet-real", change_order_seconds=CHANGE_ORDER_SECONDS) as (cloud,):
        _throttle(cloud, REAL_CALLS, REAL_WINDOW)
        run = _ours(cloud, REAL_N, REAL_CALLS, REAL_WINDOW)
    times = sae_times(run.log)
    rate = sae_rate_per_minute(run.log)
    name = f"fleet N={REAL_N}, SAE quota"
    return [
        Figure(
            name,
            "SAE calls/min over the quota",
            f"{rate:.1f}/{REAL_CALLS} = {rate / REAL_CALLS:.3f}",
            "-",
            "target >= 0.9; first to last SAE call",
        ),
        Figure(
            name,
            "busiest 60 s, SAE calls",
            f"{busiest(run.log, REAL_WINDOW)}",
            "-",
            f"quota {REAL_CALLS} in any {REAL_WINDOW:.0f} s",
        ),
        Figure(
            name,
            "apps failed (calls throttled)",
            f"{run.failed} ({throttled(run.log)} throttled)",
            "-",
            "both must be 0",
        ),
        Figure(
            name,
            "Prefect slot asks (refused)",
            f"{run.asked} ({run.refused} refused)",
            "-",
            f"for {sae_calls(run.log)} SAE calls",
        ),
        Figure(name, "wall time, s", fmt(run.wall), "-"),
        Figure(
            name,
            "wall time / quota floor",
            floor_ratio(run.wall, run.log, REAL_CALLS, REAL_WINDOW),
            "-",
            "floor: the run's SAE calls at the quota's rate",
        ),
        Figure(
            name,
            "before the first / after the last SAE call, s",
            f"{times[0] - run.started:.2f} / {run.ended - times[-1]:.2f}" if times else "-",
            "-",
            "flow start and end, outside the floor",
        ),
        *_cost(name, run, REAL_N),
    ]


def scaled_quota(quick: bool) -> list[Figure]:
    """N = 10, 50, 200 apps at a quota raised 20x: this machine is the limit."""
    sizes = SIZES[:2] if quick else SIZES
    bound = SCALED_CALLS * 60.0 / SCALED_WINDOW
    figures: list[Figure] = []
    per_app, b_rate = 0.0, 0.0
    for n in sizes:
        measured_base = n <= BASELINE_MAX
        names = (f"fleet-{n}-flow", f"fleet-{n}-base") if measured_base else (f"fleet-{n}-flow",)
        with clouds(*names, change_order_seconds=CHANGE_ORDER_SECONDS) as started:
            for cloud in started:
                _throttle(cloud, SCALED_CALLS, SCALED_WINDOW)
            jobs: list[Any] = [partial(_ours, started[0], n, SCALED_CALLS, SCALED_WINDOW)]
            if measured_base:
                jobs.append(partial(_base, started[1], n))
            results = parallel(jobs)
        run: Run = results[0]
        if measured_base:
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
            Figure(name, "wall time, s", fmt(run.wall), b_wall_text),
            Figure(
                name,
                "wall time / quota floor",
                floor_ratio(run.wall, run.log),
                b_floor_text,
                "floor: the run's SAE calls at the quota bound",
            ),
            Figure(
                name,
                "SAE calls/min (quota bound)",
                f"{sae_rate_per_minute(run.log):.0f} ({bound:.0f})",
                f"{b_rate:.0f} ({bound:.0f})",
                f"quota {SCALED_CALLS} per {SCALED_WINDOW:.0f} s, flow and sandbox",
            ),
            Figure(
                name,
                "apps failed (calls throttled)",
                f"{run.failed} ({throttled(run.log)} throttled)",
                b_fail_text,
                "failures must be 0",
            ),
        ]
        if not measured_base:
            figures += _cost(name, run, n)
    return figures


def run(quick: bool = False) -> list[Figure]:
    return real_quota() + scaled_quota(quick)
