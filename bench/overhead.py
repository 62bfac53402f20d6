"""Overhead: the Prefect flow against a plain SDK script making the same calls with the same
poll schedule (bench.baseline with the product's follow_change_order), as a ratio of wall
times, for a fresh deploy (3 s change order) and a no-op re-run. No injected latency, so what
remains is orchestration: flow and task runs, blocks, artifacts, events, the ledger. Each flow
run starts with account A's SAE rate limit unused (`unused_quota`), as the script does.

Prefect's own floor is measured beside it: an empty flow run. With Prefect's flow-run heartbeats
on (its default), the sync flow engine joins its heartbeat thread at the end of every run, and
that thread sleeps in whole seconds, so no sync flow run ends within a second. The no-op re-run
is also measured with heartbeats off, as the CLI's temporary server runs it.
"""

from __future__ import annotations

import time

from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from bench import baseline
from bench.common import Figure, clouds, demo_spec, fmt, run_flow, unused_quota

CHANGE_ORDER_SECONDS = 3.0
EMPTY_RUNS = 3


@flow(name="bench-empty")
def empty_flow() -> None:
    """Nothing: what any flow run costs."""


def empty_run_seconds() -> float:
    """The quickest of EMPTY_RUNS empty flow runs, with the current settings."""
    walls = []
    for _ in range(EMPTY_RUNS):
        started = time.monotonic()
        empty_flow()
        walls.append(time.monotonic() - started)
    return min(walls)


def run(quick: bool = False) -> list[Figure]:
    with clouds("oh-flow", "oh-script", change_order_seconds=CHANGE_ORDER_SECONDS) as (ours, plain):
        script = baseline.product_polling(plain)
        # one after another, so neither competes with the other for the CPU
        unused_quota()
        flow_fresh = run_flow(demo_spec(ours))
        unused_quota()
        flow_again = run_flow(demo_spec(ours))
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            unused_quota()
            flow_quiet = run_flow(demo_spec(ours))
            empty_quiet = empty_run_seconds()
        empty = empty_run_seconds()
        script_fresh = baseline.deploy(plain, demo_spec(plain), script)
        script_again = baseline.deploy(plain, demo_spec(plain), script)
    assert flow_fresh.ok and flow_again.outcome == flow_quiet.outcome == "unchanged"
    name = "overhead"
    rows = []
    for label, ours_s, plain_s in (
        ("fresh deploy", flow_fresh.wall_seconds, script_fresh.wall_seconds),
        ("no-op re-run", flow_again.wall_seconds, script_again.wall_seconds),
        ("no-op re-run, heartbeats off", flow_quiet.wall_seconds, script_again.wall_seconds),
    ):
        rows.append(
            Figure(
                name,
                f"{label}: wall s (flow / script)",
                fmt(ours_s),
                fmt(plain_s),
                f"ratio {ours_s / plain_s:.2f}x, +{ours_s - plain_s:.2f} s",
            )
        )
    rows.append(
        Figure(
            name,
            "an empty flow run: wall s (heartbeats on / off)",
            fmt(empty),
            fmt(empty_quiet),
            "Prefect's own floor for any flow run",
        )
    )
    return rows
