"""The naive baseline: the flow's steps one after another with the official SDK clients, no
Prefect, no concurrency, no retries, and fixed 3-second polling of DescribeChangeOrder.

It reads what the flow reads and creates only what is missing (so a re-run writes nothing, as
a careful script would), then creates the app or redeploys it when its image differs. `follow`
is pluggable: `fixed_polling(3.0)` is the baseline; `product_polling` (the product's own
backoff schedule) makes it the plain SDK script that the overhead scenario compares against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_cr20181201.client import Client as CrClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_sae20190506.client import Client as SaeClient
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from bench.common import Cloud, sdk_config
from crossdeploy import ram_policy
from crossdeploy.spec import DeploySpec

TERMINAL = frozenset({2, 3, 6, 10})
Follow = Callable[[Any, str], int]
"""(SAE client, change order id) -> final status."""


def fixed_polling(seconds: float) -> Follow:
    """DescribeChangeOrder every `seconds` until the order ends."""

    def follow(sae: Any, change_order_id: str) -> int:
        request = sae_models.DescribeChangeOrderRequest(change_order_id=change_order_id)
        while True:
            status = int(sae.describe_change_order(request).body.data.status)
            if status in TERMINAL:
                return status
            time.sleep(seconds)

    return follow


def product_polling(cloud: Cloud, timeout_seconds: float = 1200) -> Follow:
    """The product's poll schedule (tasks.change_order.follow_change_order), without Prefect."""
    from pydantic import SecretStr

    from blocks import AlibabaCloudCredentials
    from tasks.change_order import follow_change_order

    config = sdk_config(cloud, "app")
    creds = AlibabaCloudCredentials(
        access_key_id=config.access_key_id,
        access_key_secret=SecretStr(config.access_key_secret),
        endpoint=cloud.process.url,
        region_id="cn-hangzhou",
    )

    def follow(_: Any, change_order_id: str) -> int:
        return follow_change_order(creds, change_order_id, timeout_seconds=timeout_seconds).status

    return follow


@dataclass(frozen=True)
class BaselineRun:
    wall_seconds: float
    status: int | None
    """The change order's final status; None when no change order was needed."""
    started: float
    ended: float


def _code(exc: ClientException) -> str:
    return str(exc.code or "")


def deploy(cloud: Cloud, spec: DeploySpec, follow: Follow) -> BaselineRun:
    """One deploy of `spec`, step by step, as a plain script would do it."""
    started = time.time()
    sts_a, sts_b = StsClient(sdk_config(cloud, "app")), StsClient(sdk_config(cloud, "registry"))
    sae, vpc = SaeClient(sdk_config(cloud, "app")), VpcClient(sdk_config(cloud, "app"))
    ram, cr = RamClient(sdk_config(cloud, "registry")), CrClient(sdk_config(cloud, "registry"))
    region, image = spec.app.region, spec.image
    instance_id = str(image.instance_id)
    ref = spec.image.ref

    uid_a = str(sts_a.get_caller_identity().body.account_id)
    uid_b = str(sts_b.get_caller_identity().body.account_id)
    namespaces = sae.describe_namespace_list(
        sae_models.DescribeNamespaceListRequest(contain_custom=True)
    ).body.data
    ns = next(n for n in namespaces if n.namespace_id == spec.app.namespace_id)
    vpc.describe_vswitch_attributes(
        vpc_models.DescribeVSwitchAttributesRequest(region_id=region, v_switch_id=ns.v_switch_id)
    )
    vpc.describe_vpc_attribute(
        vpc_models.DescribeVpcAttributeRequest(region_id=region, vpc_id=ns.vpc_id)
    )
    nats = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(
            region_id=region, vpc_id=ns.vpc_id, network_type="internet", page_size=50
        )
    ).body.nat_gateways.nat_gateway
    egress = ""
    for nat in nats:
        entries = vpc.describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id=region, nat_gateway_id=nat.nat_gateway_id, page_size=50
            )
        ).body.snat_table_entries.snat_table_entry
        for entry in entries:
            if entry.source_vswitch_id == ns.v_switch_id:
                egress = str(entry.snat_ip).split(",")[0]

    cr.get_instance(cr_models.GetInstanceRequest(instance_id=instance_id))
    repo_id = cr.get_repository(
        cr_models.GetRepositoryRequest(
            instance_id=instance_id, repo_namespace_name=ref.namespace, repo_name=ref.repo
        )
    ).body.repo_id
    cr.get_repo_tag(
        cr_models.GetRepoTagRequest(instance_id=instance_id, repo_id=repo_id, tag=ref.tag)
    )

    role_name, policy_name = spec.role_name, spec.policy_name
    try:
        ram.get_role(ram_models.GetRoleRequest(role_name=role_name))
        role_exists = True
    except ClientException as exc:
        if _code(exc) != "EntityNotExist.Role":
            raise
        role_exists = False
    try:
        ram.get_policy(ram_models.GetPolicyRequest(policy_name=policy_name, policy_type="Custom"))
        policy_exists = True
    except ClientException as exc:
        if _code(exc) != "EntityNotExist.Policy":
            raise
        policy_exists = False
    attached = False
    if role_exists:
        listed = ram.list_policies_for_role(
            ram_models.ListPoliciesForRoleRequest(role_name=role_name)
        ).body.policies.policy
        attached = any(p.policy_name == policy_name for p in listed)
    acl = cr.get_instance_endpoint(
        cr_models.GetInstanceEndpointRequest(
            instance_id=instance_id, endpoint_type="internet", module_name="Registry"
        )
    ).body.acl_entries
    whitelisted = any(a.entry == f"{egress}/32" for a in acl or [])
    listed_apps = sae.list_applications(
        sae_models.ListApplicationsRequest(
            app_name=spec.app.name, namespace_id=spec.app.namespace_id
        )
    ).body.data.applications
    app = next((a for a in listed_apps or [] if a.app_name == spec.app.name), None)

    if not role_exists:
        ram.create_role(
            ram_models.CreateRoleRequest(
                role_name=role_name,
                assume_role_policy_document=ram_policy.to_text(ram_policy.sae_trust_policy(uid_a)),
            )
        )
    if not policy_exists:
        document = ram_policy.pull_policy(
            uid_b, instance_id=instance_id, namespace=ref.namespace, repo=ref.repo
        )
        ram.create_policy(
            ram_models.CreatePolicyRequest(
                policy_name=policy_name, policy_document=ram_policy.to_text(document)
            )
        )
    if not attached:
        ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="Custom", policy_name=policy_name, role_name=role_name
            )
        )
    if spec.network.whitelist != "none" and egress and not whitelisted:
        cr.create_instance_endpoint_acl_policy(
            cr_models.CreateInstanceEndpointAclPolicyRequest(
                instance_id=instance_id,
                endpoint_type="internet",
                entry=f"{egress}/32",
                comment=f"baseline:{spec.app.name}",
                module_name="Registry",
            )
        )

    role_arn = f"acs:ram::{uid_b}:role/{role_name}"
    if app is None:
        created = sae.create_application(
            sae_models.CreateApplicationRequest(
                app_name=spec.app.name,
                namespace_id=spec.app.namespace_id,
                package_type="Image",
                image_url=image.url,
                acr_instance_id=instance_id,
                acr_assume_role_arn=role_arn,
                cpu=spec.app.cpu,
                memory=spec.app.memory,
                replicas=spec.app.replicas,
                vpc_id=ns.vpc_id,
                v_switch_id=ns.v_switch_id,
                deploy=True,
            )
        ).body.data
        app_id, change_order = str(created.app_id), str(created.change_order_id)
    else:
        app_id = str(app.app_id)
        config = sae.describe_application_config(
            sae_models.DescribeApplicationConfigRequest(app_id=app_id)
        ).body.data
        if config.image_url == image.url:
            ended = time.time()
            return BaselineRun(ended - started, None, started, ended)
        change_order = str(
            sae.deploy_application(
                sae_models.DeployApplicationRequest(
                    app_id=app_id, image_url=image.url, acr_assume_role_arn=role_arn
                )
            ).body.data.change_order_id
        )
    status = follow(sae, change_order)
    if status == 2:
        sae.describe_application_status(sae_models.DescribeApplicationStatusRequest(app_id=app_id))
    ended = time.time()
    return BaselineRun(ended - started, status, started, ended)
