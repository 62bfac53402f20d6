"""`crossdeploy demo`: start a sandbox with the demo world and walk the cross-account path.

Until the deploy flow lands (issue 4), the demo shows each fact that flow will establish, read
through the official SDKs from the sandbox cloud: both identities, the SAE namespace's network
egress, the image and the registry whitelist in account B, and the pull role whose trust names
only account A's SAE service.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.testing import SandboxProcess
from sandbox.world import World, load_world

PULL_ACTIONS = [
    "cr:GetAuthorizationToken",
    "cr:ListInstanceEndpoint",
    "cr:PullRepository",
    "cr:GetRepository",
    "cr:ListRepositoryTag",
]


def _config(endpoint: str, key_id: str, secret: str, token: str | None = None) -> Any:
    from alibabacloud_tea_openapi.utils_models import Config

    return Config(
        access_key_id=key_id,
        access_key_secret=secret,
        security_token=token,
        endpoint=endpoint,
        protocol="http",
        region_id="cn-hangzhou",
    )


def run_demo(console: Console | None = None) -> int:
    """Run the tour; returns the process exit code."""
    console = console or Console(emoji=False, highlight=False)
    world = load_world()
    with SandboxProcess() as sandbox:
        console.print(f"[bold]Sandbox cloud[/] listening on {sandbox.url} (demo world)\n")
        table = Table(title="Cross-account path")
        table.add_column("step", no_wrap=True)
        table.add_column("account", no_wrap=True)
        table.add_column("what the sandbox answered", overflow="fold")
        for step, account, fact in _tour(sandbox.endpoint, world):
            table.add_row(step, account, fact)
        console.print(table)
    console.print(
        "\nEvery row came from the official Alibaba Cloud SDKs over HTTP, signed and checked. "
        "The deploy flow (issue 4) turns these checks into one Prefect run."
    )
    return 0


def _tour(endpoint: str, world: World) -> list[tuple[str, str, str]]:
    from alibabacloud_cr20181201 import models as cr_models
    from alibabacloud_cr20181201.client import Client as CrClient
    from alibabacloud_ram20150501 import models as ram_models
    from alibabacloud_ram20150501.client import Client as RamClient
    from alibabacloud_sae20190506 import models as sae_models
    from alibabacloud_sae20190506.client import Client as SaeClient
    from alibabacloud_sts20150401 import models as sts_models
    from alibabacloud_sts20150401.client import Client as StsClient
    from alibabacloud_tea_openapi.exceptions import ClientException
    from alibabacloud_vpc20160428 import models as vpc_models
    from alibabacloud_vpc20160428.client import Client as VpcClient

    app_key, reg_key = world.account("app").access_keys[0], world.account("registry").access_keys[0]
    a = _config(endpoint, app_key.id, app_key.secret)
    b = _config(endpoint, reg_key.id, reg_key.secret)
    rows: list[tuple[str, str, str]] = []

    a_uid = StsClient(a).get_caller_identity().body.account_id
    b_uid = StsClient(b).get_caller_identity().body.account_id
    rows.append(("identities", "A, B", f"A = {a_uid}, B = {b_uid}"))

    namespaces = SaeClient(a).describe_namespace_list(sae_models.DescribeNamespaceListRequest())
    ns = next(n for n in namespaces.body.data if n.namespace_id == "cn-hangzhou:demo")
    rows.append(("namespace", "A", f"{ns.namespace_id} → {ns.vpc_id} / {ns.v_switch_id}"))

    vpc = VpcClient(a)
    nats = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id="cn-hangzhou", vpc_id=ns.vpc_id)
    ).body.nat_gateways.nat_gateway
    egress = "no NAT gateway"
    for nat in nats:
        entries = vpc.describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id="cn-hangzhou", nat_gateway_id=nat.nat_gateway_id
            )
        ).body.snat_table_entries.snat_table_entry
        for entry in entries:
            if entry.source_vswitch_id == ns.v_switch_id:
                egress = f"{ns.v_switch_id} → {nat.nat_gateway_id} → EIP {entry.snat_ip}"
    rows.append(("egress", "A", egress))

    cr = CrClient(b)
    repo = cr.get_repository(
        cr_models.GetRepositoryRequest(
            instance_id="cri-demo", repo_namespace_name="shop", repo_name="web"
        )
    ).body
    tag = cr.get_repo_tag(
        cr_models.GetRepoTagRequest(instance_id="cri-demo", repo_id=repo.repo_id, tag="1.1")
    ).body
    rows.append(("image", "B", f"shop/web:1.1 on cri-demo ({tag.digest})"))
    endpoint_info = cr.get_instance_endpoint(
        cr_models.GetInstanceEndpointRequest(instance_id="cri-demo", endpoint_type="internet")
    ).body
    acl = ", ".join(e.entry for e in endpoint_info.acl_entries) or "empty"
    rows.append(("whitelist", "B", f"internet endpoint enabled={endpoint_info.enable}, ACL: {acl}"))

    ram = RamClient(b)
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": [f"{a_uid}@sae.aliyuncs.com"]},
            }
        ],
    }
    role = ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="sae-pull-shop-web", assume_role_policy_document=json.dumps(trust)
        )
    ).body.role
    policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": PULL_ACTIONS, "Resource": "*"}],
    }
    ram.create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="sae-pull-shop-web", policy_document=json.dumps(policy)
        )
    )
    ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="Custom", policy_name="sae-pull-shop-web", role_name="sae-pull-shop-web"
        )
    )
    rows.append(("pull role", "B", f"{role.arn}, trusted by {a_uid}@sae.aliyuncs.com"))

    try:
        StsClient(a).assume_role(
            sts_models.AssumeRoleRequest(role_arn=role.arn, role_session_name="demo")
        )
        verdict = "A's own keys could assume it (unexpected)"
    except ClientException as refused:
        verdict = f"A's own keys are refused ({refused.code}): only SAE may assume it"
    rows.append(("least privilege", "A → B", verdict))
    return rows
