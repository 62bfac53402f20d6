"""Two deploys of the same app at once are serialized by the app's Prefect concurrency limit
(issue 6, item 3): one deploys, the other waits and then finds nothing to do."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from crossdeploy.app_lock import lock_name
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.deploy_support import (
    APP_UID,
    Run,
    deploy,
    forget_ledgers,
    make_spec,
    save_blocks,
)
from tests.reliability_support import RAM_ROLE_ADDS, added, statuses


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
