"""Shared steps for SAE tests, done through the official SDKs as a user (or our flow) would.

`ready_cross_account` prepares account B (pull role trusted by A's SAE, pull policy attached,
A's NAT EIP whitelisted); `create_app` creates the demo application; `wait_for` polls a change
order to a terminal or waiting status.
"""

from __future__ import annotations

import time
from typing import Any

from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models

from sandbox.testing import SandboxAdmin
from tests.support.clients import SdkFactory
from tests.support.pull_worlds import pull_policy, sae_trust

IMAGE = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"
TERMINAL = {2, 3, 6, 10}


def grant_pull_role(sdk: SdkFactory, name: str = "sae-pull") -> str:
    ram = sdk.ram("registry")
    role = ram.create_role(
        ram_models.CreateRoleRequest(role_name=name, assume_role_policy_document=sae_trust())
    ).body.role
    ram.create_policy(
        ram_models.CreatePolicyRequest(policy_name=name, policy_document=pull_policy())
    )
    ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=name, role_name=name)
    )
    return str(role.arn)


def whitelist(sdk: SdkFactory, entry: str = "47.96.10.20/32") -> None:
    sdk.cr("registry").create_instance_endpoint_acl_policy(
        cr_models.CreateInstanceEndpointAclPolicyRequest(
            instance_id="cri-demo", endpoint_type="internet", entry=entry, comment="tests"
        )
    )


def unwhitelist(sdk: SdkFactory, entry: str = "47.96.10.20/32") -> None:
    """Take `entry` off cri-demo's internet ACL (a pull over the public domain then times out)."""
    sdk.cr("registry").delete_instance_endpoint_acl_policy(
        cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id="cri-demo", endpoint_type="internet", entry=entry, module_name="Registry"
        )
    )


def ready_cross_account(sdk: SdkFactory) -> str:
    """Account B set up for account A's SAE to pull shop/web; returns the role ARN."""
    arn = grant_pull_role(sdk)
    whitelist(sdk)
    return arn


def create_app(sdk: SdkFactory, role_arn: str, **params: Any) -> tuple[str, str]:
    """Create `shop-web` (2 x 1 core / 2 GiB) from IMAGE; returns (AppId, ChangeOrderId)."""
    request: dict[str, Any] = {
        "app_name": "shop-web",
        "namespace_id": "cn-hangzhou:demo",
        "package_type": "Image",
        "image_url": IMAGE,
        "acr_instance_id": "cri-demo",
        "acr_assume_role_arn": role_arn,
        "cpu": 1000,
        "memory": 2048,
        "replicas": 2,
        **params,
    }
    data = sdk.sae().create_application(sae_models.CreateApplicationRequest(**request)).body.data
    return str(data.app_id), str(data.change_order_id)


def describe(sdk: SdkFactory, change_order_id: str) -> Any:
    request = sae_models.DescribeChangeOrderRequest(change_order_id=change_order_id)
    return sdk.sae().describe_change_order(request).body.data


def wait_for(
    sdk: SdkFactory, change_order_id: str, until: set[int] = TERMINAL, timeout: float = 30
) -> Any:
    """Poll DescribeChangeOrder until its status is in `until`."""
    deadline = time.monotonic() + timeout
    while True:
        data = describe(sdk, change_order_id)
        if data.status in until:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"change order {change_order_id} stuck in status {data.status}")
        time.sleep(0.05)


def abnormal_release(sdk: SdkFactory, app_id: str, image: str) -> str:
    """Deploy `image` in two manually confirmed batches, and take the EIP off the ACL before
    confirming batch 2: its pull fails and the order stays running with SubStatus 1 (abnormal).
    Returns the order's id."""
    strategy = '{"type":"BatchUpdate","batchUpdate":{"batch":2,"releaseType":"manual"}}'
    request = sae_models.DeployApplicationRequest(
        app_id=app_id, image_url=image, update_strategy=strategy
    )
    order_id = str(sdk.sae().deploy_application(request).body.data.change_order_id)
    waiting = wait_for(sdk, order_id, until={8, 2, 3})
    assert (waiting.status, waiting.sub_status) == (8, 0)
    unwhitelist(sdk)
    sdk.sae().confirm_pipeline_batch(
        sae_models.ConfirmPipelineBatchRequest(
            pipeline_id=waiting.pipelines[1].pipeline_id, confirm=True
        )
    )
    deadline = time.monotonic() + 30
    while (order := describe(sdk, order_id)).sub_status != 1:
        assert time.monotonic() < deadline and order.status in (8, 1), order.status
        time.sleep(0.05)
    return order_id


def tasks(sdk: SdkFactory, pipeline_id: str) -> list[Any]:
    request = sae_models.DescribePipelineRequest(pipeline_id=pipeline_id)
    data = sdk.sae().describe_pipeline(request).body.data
    return [task for stage in data.stage_list for task in stage.task_list]


def instances(sdk: SdkFactory, app_id: str) -> list[Any]:
    sae = sdk.sae()
    group = sae.describe_application_groups(
        sae_models.DescribeApplicationGroupsRequest(app_id=app_id)
    ).body.data[0]
    request = sae_models.DescribeApplicationInstancesRequest(
        app_id=app_id, group_id=group.group_id, page_size=100
    )
    return list(sae.describe_application_instances(request).body.data.instances)


def status(sdk: SdkFactory, app_id: str) -> Any:
    request = sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    return sdk.sae().describe_application_status(request).body.data


def pull_reason(admin: SandboxAdmin, change_order_id: str, region: str = "cn-hangzhou") -> str:
    """The sandbox's own record of why a pull failed (never part of an API answer)."""
    order = admin.state()["app"][region]["sae_change_order"][change_order_id]
    return str((order.get("pull") or {}).get("reason", ""))
