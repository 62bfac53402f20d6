"""Two deploys of the same app at once are serialized by the app's Prefect concurrency limit
(issue 6, item 3): one deploys, the other waits and then finds nothing to do."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from crossdeploy.app_lock import lock_name
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import (
    APP_UID,
    Run,
    deploy,
    forget_ledgers,
    normalized,
    save_blocks,
    tear_down,
)
from tests.support.reliability_support import RAM_ROLE_ADDS, added, statuses
from tests.support.specs import make_spec


@pytest.fixture
def world(
    prefect_harness: None, fast_sandbox_process: SandboxProcess, fast_admin: SandboxAdmin
) -> SandboxAdmin:
    save_blocks(fast_sandbox_process.url)
    forget_ledgers()
    return fast_admin


@pytest.mark.reliability(
    "concurrency", "two deploys of the same app started at the same moment (two threads)"
)
def test_two_runs_of_one_app_are_serialized(world: SandboxAdmin, record_property: Any) -> None:
    """Both end Completed: one "deployed", the other "unchanged" with zero writes. The second
    inspected only after the first's change order had ended, so one app and one create order
    exist; the limit is free again afterwards."""
    spec = make_spec()
    before = world.state()
    runs: list[Run | BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            runs.append(deploy(spec))
        except BaseException as exc:  # reported by the test thread
            runs.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(r, Run) for r in runs) and len(runs) == 2, runs
    done = [r for r in runs if isinstance(r, Run)]
    assert sorted(r.result.outcome for r in done) == ["deployed", "unchanged"]
    log = world.requests()
    assert added(before, world.state()) == RAM_ROLE_ADDS
    assert all(len(s) == 1 for s in statuses(log).values()), statuses(log)
    role_reads = [e["seq"] for e in log if e["action"] == "GetRole"]
    order_reads = [e["seq"] for e in log if e["action"] == "DescribeChangeOrder"]
    assert len(role_reads) == 2
    assert role_reads[1] > max(order_reads)
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(lock_name(spec, APP_UID))
    assert (limit.limit, limit.active_slots) == (1, 0)
    record_property(
        "outcome",
        "one run deployed, the other waited on the app's concurrency limit (1 slot), then "
        f"inspected after the first's change order ended and ended unchanged with 0 writes; "
        f"1 app, 1 create order, limit {limit.name} free afterwards",
    )


@pytest.mark.reliability(
    "concurrency", "a teardown started while a deploy of the same app holds its lock"
)
def test_a_teardown_waits_for_the_deploy_it_undoes(
    world: SandboxAdmin, record_property: Any
) -> None:
    """The teardown waits on the app's lock and reads the ledger only then, so it removes
    everything the deploy made: both accounts end as they began."""
    spec = make_spec(app={"name": "lock-teardown"})
    name = lock_name(spec, APP_UID)
    before = normalized(world.state())
    world.set_faults({"action": "GetRole", "latency_ms": 3000})  # the deploy still inspects
    runs: list[Run | BaseException] = []

    def run() -> None:
        try:
            runs.append(deploy(spec))
        except BaseException as exc:  # reported by the test thread
            runs.append(exc)

    deployer = threading.Thread(target=run)
    deployer.start()
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 60
        while client.read_variable_by_name(name) is None:
            assert time.monotonic() < deadline, "the deploy never took the app's lock"
            time.sleep(0.05)
    undone = tear_down(spec)
    deployer.join(120)
    world.clear_faults()
    assert len(runs) == 1 and isinstance(runs[0], Run) and runs[0].result.outcome == "deployed"
    assert undone.result.removed, undone.result.message
    assert normalized(world.state()) == before
    record_property(
        "outcome",
        f"the teardown waited for the deploy's lock, then removed {len(undone.result.removed)} "
        "change(s): both accounts as the world began",
    )
