"""Critical path: one fresh deploy with 100 ms per call and a 20 s change order, wall time over
the floor that the dependencies between its calls allow.

The floor is computed from the server's request log: `DEPENDS` below says which calls need
another call's answer (or effect) first; each call weighs what the server spent on it
(`answered_at - received_at`, the injected latency included), the change order weighs its
planned duration, and the bound is the heaviest chain. Calls off every chain (vSwitch and VPC
attributes, the image's instance) could run alongside and do not count.

The deploy runs twice: beside the script with Prefect's defaults, and alone with flow-run
heartbeats off, as the CLI's temporary server runs it (Prefect's sync engine ends a run with
heartbeats on only at its heartbeat thread's next whole second: bench/overhead.py).
"""

from __future__ import annotations

from functools import cache

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from bench import baseline
from bench.common import (
    Cloud,
    Entry,
    Figure,
    both,
    change_orders,
    clouds,
    demo_spec,
    fmt,
    run_flow,
    unused_quota,
)

LATENCY_MS = 100
CHANGE_ORDER_SECONDS = 20.0
CHANGE_ORDER = "change order"

Node = tuple[str, str]
"""(account, action)."""

DEPENDS: dict[Node, tuple[Node, ...]] = {
    ("app", "GetCallerIdentity"): (),
    ("registry", "GetCallerIdentity"): (),
    ("app", "DescribeNamespaceList"): (),
    ("app", "DescribeNatGateways"): (("app", "DescribeNamespaceList"),),  # the namespace's VPC
    ("app", "DescribeSnatTableEntries"): (("app", "DescribeNatGateways"),),  # the egress EIP
    ("registry", "GetRepository"): (),
    ("registry", "GetRepoTag"): (("registry", "GetRepository"),),  # by repo id
    ("registry", "GetRole"): (),
    ("registry", "GetPolicy"): (),
    ("registry", "GetInstanceEndpoint"): (),
    ("app", "ListApplications"): (),
    ("registry", "CreateRole"): (("registry", "GetRole"), ("app", "GetCallerIdentity")),
    ("registry", "CreatePolicy"): (("registry", "GetPolicy"), ("registry", "GetCallerIdentity")),
    ("registry", "AttachPolicyToRole"): (("registry", "CreateRole"), ("registry", "CreatePolicy")),
    ("registry", "CreateInstanceEndpointAclPolicy"): (
        ("registry", "GetInstanceEndpoint"),
        ("app", "DescribeSnatTableEntries"),
    ),
    ("app", "CreateApplication"): (
        ("registry", "AttachPolicyToRole"),  # the pull needs the role, its policy
        ("registry", "CreateInstanceEndpointAclPolicy"),  # and the network path
        ("registry", "GetRepoTag"),
        ("app", "ListApplications"),
    ),
    ("app", CHANGE_ORDER): (("app", "CreateApplication"),),
    ("app", "DescribeChangeOrder"): (("app", CHANGE_ORDER),),  # the one that sees it end
    ("app", "DescribeApplicationStatus"): (("app", "DescribeChangeOrder"),),  # verify
}


def bound_seconds(log: list[Entry], change_order_seconds: float) -> float:
    """The heaviest dependency chain through DEPENDS, weighed by the server's own times."""
    weights: dict[Node, float] = {(("app", CHANGE_ORDER)): change_order_seconds}
    for entry in log:
        node = (str(entry["account"]), str(entry["action"]))
        spent = float(entry["answered_at"]) - float(entry["received_at"])
        if node == ("app", "DescribeChangeOrder"):
            weights[node] = spent  # the last one: the poll that saw the end
        else:
            weights.setdefault(node, spent)

    @cache
    def finish(node: Node) -> float:
        return weights.get(node, 0.0) + max((finish(d) for d in DEPENDS[node]), default=0.0)

    return max(finish(node) for node in DEPENDS)


def _order_seconds(cloud: Cloud) -> float:
    order = change_orders(cloud)[-1]
    return float(order["cursor"]) - float(order["created_at"])


def run(quick: bool = False) -> list[Figure]:
    with clouds(
        "cp-flow",
        "cp-base",
        "cp-quiet",
        change_order_seconds=CHANGE_ORDER_SECONDS,
        latency_ms=LATENCY_MS,
    ) as (ours, base, quiet):
        unused_quota()
        flow_run, base_run = both(
            lambda: run_flow(demo_spec(ours)),
            lambda: baseline.deploy(base, demo_spec(base), baseline.fixed_polling(3.0)),
        )
        assert flow_run.ok, flow_run.outcome
        # The same deploy as `crossdeploy deploy` runs it on its own temporary server.
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            unused_quota()
            quiet_run = run_flow(demo_spec(quiet))
        assert quiet_run.ok, quiet_run.outcome
        ours_bound = bound_seconds(ours.admin.requests(), _order_seconds(ours))
        base_bound = bound_seconds(base.admin.requests(), _order_seconds(base))
        quiet_bound = bound_seconds(quiet.admin.requests(), _order_seconds(quiet))
    name = "critical path"
    return [
        Figure(name, "wall time, s", fmt(flow_run.wall_seconds), fmt(base_run.wall_seconds)),
        Figure(name, "critical-path bound, s", fmt(ours_bound), fmt(base_bound)),
        Figure(
            name,
            "wall / bound",
            fmt(flow_run.wall_seconds / ours_bound, "x"),
            fmt(base_run.wall_seconds / base_bound, "x"),
            f"{LATENCY_MS} ms per call, {CHANGE_ORDER_SECONDS:.0f} s change order",
        ),
        Figure(
            name,
            "wall / bound, heartbeats off",
            fmt(quiet_run.wall_seconds / quiet_bound, "x"),
            fmt(base_run.wall_seconds / base_bound, "x"),
            f"{fmt(quiet_run.wall_seconds)} s over {fmt(quiet_bound)} s; run alone, as the "
            "CLI's temporary server runs it",
        ),
    ]
