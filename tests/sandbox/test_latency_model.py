"""The sandbox's latency model: server-side times in the request log, injected latency recorded
per call, and change-order durations set at run time (`/_sandbox/timing`).

Behaviour only: times are checked for order and for the latency the server says it applied,
never against a wall-clock budget.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.sae_setup import create_app, ready_cross_account, wait_for
from tests.support.worlds import FAST_TIMING


def _order(admin: SandboxAdmin, change_order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = admin.state()["app"]["cn-hangzhou"]["sae_change_order"][change_order_id]
    return order


def _planned_seconds(order: dict[str, Any]) -> float:
    """The change order's duration as the sandbox planned it: the sum of its tasks' times."""
    return sum(
        float(task["seconds"])
        for pipeline in order["pipelines"]
        for stage in pipeline["stages"]
        for task in stage["tasks"]
    )


def test_every_log_entry_has_ordered_server_times_and_the_latency_it_was_given(
    fast_admin: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    fast_admin.set_faults({"product": "sts", "action": "GetCallerIdentity", "latency_ms": 40})
    fast_sdk.sts("app").get_caller_identity()
    fast_sdk.sts("registry").get_caller_identity()
    fast_sdk.ram("registry").list_roles(ram_models.ListRolesRequest())
    with pytest.raises(ClientException) as refused:
        fast_sdk.sts("app", key=("LTAIunknown0000000", "nope")).get_caller_identity()
    assert refused.value.code == "InvalidAccessKeyId.NotFound"

    log = fast_admin.requests()
    assert [e["action"] for e in log] == ["GetCallerIdentity"] * 2 + ["ListRoles"] + [
        "GetCallerIdentity"
    ]
    for entry in log:
        assert entry["received_at"] <= entry["started_at"] <= entry["answered_at"]
    assert [e["latency_ms"] for e in log] == [40, 40, 0, 0]  # refused before faults: none
    for entry in log[:2]:
        assert entry["answered_at"] - entry["started_at"] >= 0.04
    for earlier, later in pairwise(log):
        assert earlier["answered_at"] <= later["received_at"]  # one call after another


def test_change_order_duration_is_set_at_run_time_for_orders_started_afterwards(
    fast_admin: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    world_timing = fast_admin.timing()
    assert world_timing == {**world_timing, **FAST_TIMING}
    arn = ready_cross_account(fast_sdk)
    app_id, first = create_app(fast_sdk, arn)

    assert fast_admin.set_timing(change_order_seconds=1.5) == {
        **world_timing,
        "change_order_seconds": 1.5,
    }
    assert _planned_seconds(_order(fast_admin, first)) == pytest.approx(0.6)  # kept its own
    wait_for(fast_sdk, first)
    deployed = fast_sdk.sae().deploy_application(
        sae_models.DeployApplicationRequest(app_id=app_id, envs='[{"name": "A", "value": "1"}]')
    )
    second = str(deployed.body.data.change_order_id)
    order = _order(fast_admin, second)
    assert _planned_seconds(order) == pytest.approx(1.5)
    done = wait_for(fast_sdk, second)
    assert done.status == 2
    finished = _order(fast_admin, second)
    assert finished["cursor"] - finished["created_at"] >= 1.5  # ran for its planned time

    fast_admin.reset()
    assert fast_admin.timing() == world_timing


def test_timing_route_refuses_bad_fields_by_name(
    fast_admin: SandboxAdmin, fast_sandbox_process: SandboxProcess
) -> None:
    url = fast_sandbox_process.url
    world_timing = fast_admin.timing()
    for body, field in (
        ({"change_order_seconds": -1}, "change_order_seconds"),
        ({"minute_seconds": 0}, "minute_seconds"),
        ({"change_order_secs": 5}, "change_order_secs"),
    ):
        answer = httpx.post(f"{url}/_sandbox/timing", json=body)
        assert answer.status_code == 400
        assert field in answer.json()["error"]
    answer = httpx.post(f"{url}/_sandbox/timing", content=b"[1]")
    assert answer.status_code == 400
    assert fast_admin.timing() == world_timing
