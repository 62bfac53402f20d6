"""Manual batch release confirmed in the Prefect UI, against the session's Prefect server and the
fast sandbox: a deploy with `rollout.confirm: manual` and 2 batches pauses its flow run when batch
2 waits; resuming it with Confirm (as the UI's Resume form does, through the API) lands the app,
with Abort the change order is aborted (and rolled back when the spec says so).

The flow runs in a thread of this process, as `crossdeploy deploy` runs it: `pause_flow_run`
blocks that thread, polling the API, until the test resumes the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from crossdeploy.spec import DeploySpec
from sandbox.testing import SandboxAdmin
from tests.support.clients import SdkFactory
from tests.support.deploy_support import Run, app_status, as_read_back, deploy
from tests.support.specs import make_spec

pytestmark = pytest.mark.timeout(120)

OLDER = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"
RUNNING_2 = ("RUNNING", 2, {"Running": 2})


def manual(**rollout: Any) -> DeploySpec:
    return make_spec(
        image={"url": OLDER},
        rollout={"batches": 2, "confirm": "manual", "timeout_seconds": 60, **rollout},
    )


@contextmanager
def deploying(spec: DeploySpec) -> Iterator[list[Run]]:
    """`deploy(spec)` in a thread; the list holds its Run once the thread is done."""
    done: list[Run] = []
    thread = threading.Thread(target=lambda: done.append(deploy(spec)), daemon=True)
    thread.start()
    try:
        yield done
    finally:
        thread.join(timeout=90)
    assert done, "the deploy did not finish"


def paused_run(name: str, timeout: float = 30) -> UUID:
    """The id of the flow run `name` once it is paused."""
    paused = FlowRunFilter(
        name=FlowRunFilterName(any_=[name]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs:
                return runs[0].id
            time.sleep(0.2)
    raise AssertionError(f"no paused flow run {name} after {timeout:.0f}s")


def form_of(run_id: UUID) -> tuple[str, dict[str, Any]]:
    """The description and the schema a person sees on Resume."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        assert run.state is not None and run.state.state_details.run_input_keyset
        keyset = run.state.state_details.run_input_keyset
        description = client.read_flow_run_input(run_id, keyset["description"])
        schema = client.read_flow_run_input(run_id, keyset["schema"])
    return json.loads(description), json.loads(schema)


def actions(world: SandboxAdmin) -> list[str]:
    return [str(r["action"]) for r in world.requests()]


def test_a_batch_confirmed_in_the_prefect_ui_lands_the_app(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    first = deploy(make_spec()).result
    assert first.app_id is not None
    with deploying(manual()) as done:
        run_id = paused_run("shop-web@1.0")
        description, schema = form_of(run_id)
        assert "batch 2 of 2" in description and "waits to be confirmed" in description
        assert schema["properties"]["decision"]["default"] == "confirm"
        assert "ConfirmPipelineBatch" not in actions(world)
        resume_flow_run(run_id, run_input={"decision": "confirm"})
    result = done[0].result
    assert result.outcome == "deployed"
    assert actions(world).count("ConfirmPipelineBatch") == 1
    assert app_status(fast_sdk, first.app_id) == (*RUNNING_2, OLDER)
    assert as_read_back(run_id)[1] == result


@pytest.mark.parametrize("rollback", [True, False], ids=["rollback", "no-rollback"])
def test_a_batch_aborted_in_the_prefect_ui_aborts_the_change_order(
    world: SandboxAdmin, fast_sdk: SdkFactory, rollback: bool
) -> None:
    first = deploy(make_spec()).result
    assert first.app_id is not None
    with deploying(manual(rollback_on_failure=rollback)) as done:
        run_id = paused_run("shop-web@1.0")
        resume_flow_run(run_id, run_input={"decision": "abort"})
    run = done[0]
    assert run.state.is_failed()
    message = run.error.message
    assert "Batch 2 of 2 of change order" in message and "was refused (Abort)" in message
    called = actions(world)
    assert "ConfirmPipelineBatch" not in called
    if rollback:
        assert called.count("AbortAndRollbackChangeOrder") == 1
        assert message.splitlines()[-1].startswith("Rolled back: change order ")
        assert app_status(fast_sdk, first.app_id) == (*RUNNING_2, first_image())
    else:
        assert called.count("AbortChangeOrder") == 1
        assert "keep " + OLDER in message
        assert app_status(fast_sdk, first.app_id)[3] == OLDER  # batch 1 runs the new image
    state = as_read_back(run_id)
    assert "was refused (Abort)" in str(state[1])


def first_image() -> str:
    return make_spec().image.url
