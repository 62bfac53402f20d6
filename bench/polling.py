"""Polling: how late the deploy notices that its change order ended, and how many
DescribeChangeOrder calls it spent, for 5 s, 60 s and 600 s change orders (600 s skipped with
--quick), against fixed 3-second polling.

Lag = the last DescribeChangeOrder's arrival at the server minus the order's end on the server
(its last task's end, from the sandbox's own record). All the deploys run at once, each against
its own sandbox. Also reported: the busiest minute of SAE calls while following, since SAE
allows 60 calls a minute per user.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from bench import baseline
from bench.common import (
    Cloud,
    Entry,
    Figure,
    calls,
    change_order_end,
    change_orders,
    clouds,
    demo_spec,
    fmt,
    parallel,
    run_flow,
)

DURATIONS = (5.0, 60.0, 600.0)


def peak_per_minute(entries: list[Entry], minute: float = 60.0) -> int:
    """The most calls that arrived within any `minute` seconds (server times)."""
    times = sorted(float(e["received_at"]) for e in entries)
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= minute:
            first += 1
        best = max(best, last - first + 1)
    return best


def measure(cloud: Cloud) -> tuple[float, int, int]:
    """(lag seconds, DescribeChangeOrder calls, peak SAE calls per minute while following)."""
    order = change_orders(cloud)[0]
    log = cloud.admin.requests()
    polls = calls(log, "DescribeChangeOrder")
    following = [e for e in calls(log, since=float(order["created_at"])) if e["product"] == "sae"]
    lag = float(polls[-1]["received_at"]) - change_order_end(order)
    return lag, len(polls), peak_per_minute(following)


def run(quick: bool = False) -> list[Figure]:
    durations = DURATIONS[:2] if quick else DURATIONS
    prefixes = [f"poll-{side}-{int(d)}" for d in durations for side in ("flow", "base")]
    figures: list[Figure] = []
    with clouds(*prefixes, change_order_seconds=0) as started:
        jobs: list[Callable[[], object]] = []
        for index, seconds in enumerate(durations):
            ours, base = started[2 * index], started[2 * index + 1]
            for cloud in (ours, base):
                cloud.admin.set_timing(change_order_seconds=seconds)
            jobs.append(partial(run_flow, demo_spec(ours)))
            jobs.append(
                partial(baseline.deploy, base, demo_spec(base), baseline.fixed_polling(3.0))
            )
        parallel(jobs)
        for index, seconds in enumerate(durations):
            ours_m = measure(started[2 * index])
            base_m = measure(started[2 * index + 1])
            name = f"polling {int(seconds)} s"
            figures += [
                Figure(name, "lag after the end, s", fmt(ours_m[0]), fmt(base_m[0])),
                Figure(name, "DescribeChangeOrder calls", str(ours_m[1]), str(base_m[1])),
                Figure(
                    name,
                    "busiest minute, SAE calls",
                    str(ours_m[2]),
                    str(base_m[2]),
                    "SAE quota: 60 a minute",
                ),
            ]
    return figures
