"""The deploy process killed (SIGKILL) at each step boundary, then run again, then torn down
(issue 6, item 2: nothing lost, nobody let in).

The flow runs in a child process (forked by one driver that imported Prefect once) against this
session's Prefect server. A boundary is made exact by holding the next write: a fault rule
answers it 503 until the test has killed the child, so everything before the boundary is done and
nothing after it is. A write can also land with its reply lost and then be held: the process dies
between the write and its record, which only the write-ahead ledger knows about. The next run
converges to the spec with no duplicate role, policy version, ACL entry, secret or app, and
`teardown` then leaves both accounts exactly as the world began.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Crashed

from crossdeploy import ledger
from crossdeploy.app_lock import lock_name
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import (
    APP_UID,
    deploy,
    forget_ledgers,
    normalized,
    save_blocks,
    secret_access,
    tear_down,
)
from tests.support.reliability_support import (
    RAM_ROLE_ADDS,
    SECRET_ADDS,
    DeployDriver,
    added,
    wait_for,
)
from tests.support.specs import DEMO_SPEC, make_spec

HOLD = {"error": "ServiceUnavailable", "status": 503}
"""Answer the held write 503 every time: the child retries it until it is killed."""


@dataclass(frozen=True)
class Boundary:
    method: str
    """The spec's access method: ram-role or secret."""
    faults: tuple[dict[str, Any], ...]
    reached: dict[str, int]
    """Action -> how many 503 answers (0: one 200 answer) mean the child is at the boundary."""


def _held(*actions: str) -> Boundary:
    return Boundary(
        "ram-role", tuple({"action": a, **HOLD} for a in actions), dict.fromkeys(actions, 1)
    )


def _landed_unrecorded(method: str, action: str) -> Boundary:
    """The write runs (it commits), its reply is lost, and every retry is held: the process dies
    after the write and before its record."""
    lost = {"action": action, "lose_response": True, "times": 1}
    return Boundary(method, (lost, {"action": action, **HOLD}), {action: 2})


BOUNDARIES: dict[str, Boundary] = {
    "after inspection, before any write": _held("CreateRole", "CreateInstanceEndpointAclPolicy"),
    "after the role, before the policy": _held("CreatePolicy"),
    "after the policy, before attaching it": _held("AttachPolicyToRole"),
    "after role, policy and whitelist, before CreateApplication": _held("CreateApplication"),
    "after CreateApplication, during its change order": Boundary(
        "ram-role",
        ({"action": "DescribeChangeOrder", "latency_ms": 1500},),
        {"CreateApplication": 0},
    ),
    "after the registry secret, before CreateApplication": Boundary(
        "secret", ({"action": "CreateApplication", **HOLD},), {"CreateApplication": 1}
    ),
    "after CreateApplication landed, before its record": _landed_unrecorded(
        "ram-role", "CreateApplication"
    ),
    "after CreateSecret landed, before its record": _landed_unrecorded("secret", "CreateSecret"),
}


@pytest.fixture(scope="module")
def driver(prefect_harness: None, fast_sandbox_process: SandboxProcess) -> Iterator[DeployDriver]:
    """The blocks (saved once: every case uses the same sandbox) and the deploy driver."""
    save_blocks(fast_sandbox_process.url)
    running = DeployDriver()
    yield running
    running.close()


@pytest.fixture
def world(driver: DeployDriver, fast_admin: SandboxAdmin) -> SandboxAdmin:
    forget_ledgers()
    return fast_admin


def _reached(counts: dict[str, int]) -> Any:
    def seen(log: list[dict[str, Any]]) -> bool:
        for action, n in counts.items():
            status = 503 if n else 200
            if sum(e["action"] == action and e["status"] == status for e in log) < max(n, 1):
                return False
        return True

    return seen


def _mark_crashed(name: str) -> str:
    """What a worker does when the process it started dies: the run holding the app's lock is
    set Crashed. Returns the state it was in."""
    with get_client(sync_client=True) as client:
        variable = client.read_variable_by_name(name)
        assert variable is not None and isinstance(variable.value, dict), "no lock holder"
        run_id = UUID(str(variable.value["flow_run"]))
        before = client.read_flow_run(run_id).state
        client.set_flow_run_state(run_id, Crashed(message="process killed (SIGKILL)"), force=True)
    return str(before.name) if before else "none"


def _kinds(changes: Any) -> str:
    return ", ".join(sorted({c.resource_type.split(".")[-1] for c in changes})) or "none"


@pytest.mark.reliability("crashes", "the deploy process is SIGKILLed")
@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_rerun_after_a_kill_converges_and_teardown_restores(
    world: SandboxAdmin, driver: DeployDriver, boundary: str, record_property: Any
) -> None:
    case = BOUNDARIES[boundary]
    spec = make_spec(access=secret_access()) if case.method == "secret" else make_spec()
    data = {**DEMO_SPEC, "access": secret_access()} if case.method == "secret" else DEMO_SPEC
    before = world.state()
    world.set_faults(*case.faults)
    child = driver.start(data)
    try:
        wait_for(boundary, world, _reached(case.reached), timeout=60)
    finally:
        assert driver.kill(child) == -signal.SIGKILL
    world.clear_faults()
    killed = world.state()
    unrecorded = ledger.read(spec, APP_UID).pending
    was = _mark_crashed(lock_name(spec, APP_UID))
    rerun = deploy(spec).result
    assert rerun.outcome in ("deployed", "unchanged"), rerun.message
    adds = added(before, world.state())
    assert adds == (RAM_ROLE_ADDS if case.method == "ram-role" else SECRET_ADDS)
    pending = ledger.read(spec, APP_UID).pending
    confirmed = {(c.resource_type, c.resource_id) for c in ledger.read(spec, APP_UID).changes}
    removed = tear_down(spec).result.removed
    assert normalized(world.state()) == normalized(before)
    assert ledger.read(spec, APP_UID).entries == ()
    only_intended = [c for c in removed if (c.resource_type, c.resource_id) not in confirmed]
    if "landed" in boundary:
        # The write's reply never came back: the ledger held it only as intended.
        kind = "sae.application" if "Application" in boundary else "sae.secret"
        assert any(i.change.resource_type == kind for i in pending)
        assert any(c.resource_type == kind and c.action == "deleted" for c in only_intended)
    left = added(before, killed)
    record_property(
        "outcome",
        f"killed {boundary} (left: {', '.join(k.split(':')[1] for k in left) or 'nothing'}; "
        f"ledger then held {len(unrecorded)} intended write(s)); the killed flow run stayed "
        f"{was} in Prefect until set Crashed (a worker does that; here the test), which released "
        f"its app lock; the next run ended {rerun.outcome} with exactly one role, policy version, "
        "attachment, ACL entry, secret or app and one create order; "
        f"{len(pending)} intended write(s) were still unconfirmed and teardown confirmed them "
        f"against the cloud (removed unrecorded: {_kinds(only_intended)}); after teardown both "
        "accounts equal the world before the deploy",
    )
