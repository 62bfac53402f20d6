"""Overhead: the Prefect flow against a plain SDK script making the same calls with the same
poll schedule (bench.baseline with the product's follow_change_order), as a ratio of wall
times, for a fresh deploy (3 s change order) and a no-op re-run. No injected latency, so what
remains is orchestration: flow and task runs, blocks, artifacts, events, the ledger. Each flow
run starts with account A's SAE rate limit unused (`unused_quota`), as the script does.
"""

from __future__ import annotations

from bench import baseline
from bench.common import Figure, clouds, demo_spec, fmt, run_flow, unused_quota

CHANGE_ORDER_SECONDS = 3.0


def run(quick: bool = False) -> list[Figure]:
    with clouds("oh-flow", "oh-script", change_order_seconds=CHANGE_ORDER_SECONDS) as (ours, plain):
        script = baseline.product_polling(plain)
        # one after another, so neither competes with the other for the CPU
        unused_quota()
        flow_fresh = run_flow(demo_spec(ours))
        unused_quota()
        flow_again = run_flow(demo_spec(ours))
        script_fresh = baseline.deploy(plain, demo_spec(plain), script)
        script_again = baseline.deploy(plain, demo_spec(plain), script)
    assert flow_fresh.ok and flow_again.outcome == "unchanged"
    name = "overhead"
    rows = []
    for label, ours_s, plain_s in (
        ("fresh deploy", flow_fresh.wall_seconds, script_fresh.wall_seconds),
        ("no-op re-run", flow_again.wall_seconds, script_again.wall_seconds),
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
    return rows
