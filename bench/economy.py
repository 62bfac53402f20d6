"""API economy: calls per fresh deploy, per no-op re-run (writes must be 0), and per failed
deploy (the registry whitelist left alone, so the image pull times out and the change order
fails), counted in the sandbox's request log, ours against the baseline's.
"""

from __future__ import annotations

from bench import baseline
from bench.common import Cloud, Figure, clouds, demo_spec, parallel, run_flow, writes

CHANGE_ORDER_SECONDS = 2.0
NO_WHITELIST = {"whitelist": "none"}


def _counted(cloud: Cloud) -> tuple[int, int]:
    """Calls and writes of the run just made."""
    new = cloud.new_requests()
    return len(new), writes(new)


def _ours(cloud: Cloud, failing: Cloud) -> list[tuple[int, int]]:
    fresh = run_flow(demo_spec(cloud))
    assert fresh.ok, fresh.outcome
    counts = [_counted(cloud)]
    again = run_flow(demo_spec(cloud))
    assert again.outcome == "unchanged", again.outcome
    counts.append(_counted(cloud))
    failed = run_flow(demo_spec(failing, network=NO_WHITELIST))
    assert not failed.ok, "the deploy without a whitelist entry should fail"
    counts.append(_counted(failing))
    return counts


def _base(cloud: Cloud, failing: Cloud) -> list[tuple[int, int]]:
    poll = baseline.fixed_polling(3.0)
    baseline.deploy(cloud, demo_spec(cloud), poll)
    counts = [_counted(cloud)]
    baseline.deploy(cloud, demo_spec(cloud), poll)
    counts.append(_counted(cloud))
    failed = baseline.deploy(failing, demo_spec(failing, network=NO_WHITELIST), poll)
    assert failed.status == 3, failed.status
    counts.append(_counted(failing))
    return counts


def run(quick: bool = False) -> list[Figure]:
    prefixes = ("eco-flow", "eco-flow-fail", "eco-base", "eco-base-fail")
    with clouds(*prefixes, change_order_seconds=CHANGE_ORDER_SECONDS) as started:
        ours, base = parallel(
            [lambda: _ours(started[0], started[1]), lambda: _base(started[2], started[3])]
        )
    figures = []
    for (label, note), (o_calls, o_writes), (b_calls, b_writes) in zip(
        (
            ("fresh deploy", ""),
            ("no-op re-run", "writes must be 0"),
            ("failed deploy", "change order fails at the image pull"),
        ),
        ours,
        base,
        strict=True,
    ):
        figures.append(
            Figure(
                "API economy",
                f"{label}: calls (writes)",
                f"{o_calls} ({o_writes})",
                f"{b_calls} ({b_writes})",
                note,
            )
        )
    return figures
