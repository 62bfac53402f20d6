"""The deploy process killed (SIGKILL) at each step boundary, then run again (issue 6, item 2).

The flow runs in a child process against this session's Prefect server. A boundary is made exact
by holding the next write: a fault rule answers it 503 until the test has killed the child, so
everything before the boundary is done and nothing after it is. The next run converges to the
spec with no duplicate role, policy version, ACL entry, secret or app.
"""

from __future__ import annotations

import signal
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Crashed

from crossdeploy.app_lock import lock_name
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.conftest import DEMO_SPEC
from tests.deploy_support import APP_UID, deploy, forget_ledgers, make_spec, save_blocks
from tests.reliability_support import (
    RAM_ROLE_ADDS,
    SECRET_ADDS,
    added,
    answered,
    start_child_deploy,
    wait_for,
)

HOLD = {"error": "ServiceUnavailable", "status": 503}
"""Answer the held write 503 every time: the child retries it until it is killed."""

BOUNDARIES: dict[str, tuple[str, list[str], str]] = {
    "after inspection, before any write": (
        "ram-role",
        ["CreateRole", "CreateInstanceEndpointAclPolicy"],
        "",
    ),
    "after the role, before the policy": ("ram-role", ["CreatePolicy"], ""),
    "after the policy, before attaching it": ("ram-role", ["AttachPolicyToRole"], ""),
    "after role, policy and whitelist, before CreateApplication": (
        "ram-role",
        ["CreateApplication"],
        "",
    ),
    "after CreateApplication, during its change order": ("ram-role", [], "CreateApplication"),
    "after the registry secret, before CreateApplication": ("secret", ["CreateApplication"], ""),
}
"""Boundary -> (access method, writes held, or the write whose answer marks the boundary)."""


@pytest.fixture
def world(
    prefect_harness: None, fast_sandbox_process: SandboxProcess, fast_admin: SandboxAdmin
) -> SandboxAdmin:
    save_blocks(fast_sandbox_process.url)
    forget_ledgers()
    return fast_admin


def _spec_data(method: str) -> dict[str, Any]:
    access = {"method": "secret", "registry_login": "acr-login"} if method == "secret" else {}
    return {**DEMO_SPEC, "access": access} if access else DEMO_SPEC


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


@pytest.mark.reliability("crashes", "the deploy process is SIGKILLed")
@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_rerun_after_a_kill_converges(
    world: SandboxAdmin, boundary: str, record_property: Any
) -> None:
    method, held, marker = BOUNDARIES[boundary]
    data = _spec_data(method)
    spec = make_spec(access=data["access"]) if method == "secret" else make_spec()
    before = world.state()
    if held:
        world.set_faults(*({"action": action, **HOLD} for action in held))
        seen = [answered(action, 503) for action in held]
        reached = lambda log: all(s(log) for s in seen)  # noqa: E731
    else:
        world.set_faults({"action": "DescribeChangeOrder", "latency_ms": 1500})
        reached = answered(marker)
    child = start_child_deploy(data)
    try:
        wait_for(boundary, world, reached, timeout=60)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    world.clear_faults()
    killed = world.state()
    was = _mark_crashed(lock_name(spec, APP_UID))
    rerun = deploy(spec).result
    assert rerun.outcome in ("deployed", "unchanged"), rerun.message
    adds = added(before, world.state())
    assert adds == (RAM_ROLE_ADDS if method == "ram-role" else SECRET_ADDS)
    left = added(before, killed)
    record_property(
        "outcome",
        f"killed {boundary} (left: {', '.join(k.split(':')[1] for k in left) or 'nothing'}); "
        f"the killed flow run stayed {was} in Prefect until set Crashed (a worker does that; "
        f"here the test), which released its app lock; the next run ended {rerun.outcome} with "
        "exactly one role, policy version, attachment, ACL entry, secret or app and one create "
        "order",
    )
