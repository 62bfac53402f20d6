"""API economy: calls per fresh deploy, per no-op re-run (writes must be 0), and per failed
deploy (the registry whitelist left alone, so the image pull times out and the change order
fails), counted in the sandbox's request log, ours against the baseline's; then the fresh and
the failed deploy's calls step by step.

A call counts for the step that declares it (`Step.permissions`, in flows/steps.py order),
except STS's GetCallerIdentity (`identity`), following the change order (`follow`), verifying
the app (`verify`) and finding a version to roll back to (`rollback`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from bench import baseline
from bench.common import Cloud, Entry, Figure, clouds, demo_spec, parallel, run_flow, writes
from crossdeploy.permissions import Arns, ram_action
from crossdeploy.spec import DeploySpec
from flows.steps import STEPS

CHANGE_ORDER_SECONDS = 2.0
NO_WHITELIST = {"whitelist": "none"}
PHASES = {
    "sts:GetCallerIdentity": "identity",
    "sae:DescribeChangeOrder": "follow",
    "sae:DescribePipeline": "follow",
    "sae:DescribeApplicationStatus": "verify",
    "sae:DescribeApplicationGroups": "verify",
    "sae:DescribeApplicationInstances": "verify",
    "sae:ListAppVersions": "rollback",
    "sae:RollbackApplication": "rollback",
}
"""Calls counted as a phase of their own rather than for the step that declares them."""
RUNS = (
    ("fresh deploy", ""),
    ("no-op re-run", "writes must be 0"),
    ("failed deploy", "change order fails at the image pull"),
)
Counted = tuple[list[Entry], int]
"""A run's calls (request-log entries) and its writes."""


def owners(spec: DeploySpec) -> dict[str, str]:
    """RAM action -> the first step that declares it for `spec`."""
    found: dict[str, str] = {}
    for step in STEPS:
        needs = step.permissions(spec, Arns("0", spec.app.region))
        for permission in (*needs.reads, *needs.writes, *needs.removes):
            found.setdefault(permission.action, step.name)
    return found


def by_step(log: Iterable[Entry], owner: dict[str, str]) -> Counter[str]:
    """One run's calls per step (or phase)."""
    counts: Counter[str] = Counter()
    for entry in log:
        api = f"{entry['product']}:{entry['action']}"
        counts[PHASES.get(api) or owner.get(ram_action(api), "other")] += 1
    return counts


def _counted(cloud: Cloud) -> Counted:
    new = cloud.new_requests()
    return new, writes(new)


def _ours(cloud: Cloud, failing: Cloud) -> list[Counted]:
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


def _base(cloud: Cloud, failing: Cloud) -> list[Counted]:
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
        owner = owners(demo_spec(started[0]))
    figures = [
        Figure(
            "API economy",
            f"{label}: calls (writes)",
            f"{len(o_log)} ({o_writes})",
            f"{len(b_log)} ({b_writes})",
            note,
        )
        for (label, note), (o_log, o_writes), (b_log, b_writes) in zip(
            RUNS, ours, base, strict=True
        )
    ]
    for index, label in ((0, "fresh deploy"), (2, "failed deploy")):
        mine, theirs = by_step(ours[index][0], owner), by_step(base[index][0], owner)
        order = ["identity", *(s.name for s in STEPS), "follow", "verify", "rollback", "other"]
        for step in [name for name in order if name in mine or name in theirs]:
            figures.append(
                Figure(
                    "API economy by step",
                    f"{label}: {step}",
                    str(mine.get(step, 0)),
                    str(theirs.get(step, 0)),
                )
            )
    return figures
