"""The one explicit route table: every emulated action, how it is reached, and whether it writes.

RPC actions are found by (version, action); ROA actions by (version, method, path). The table also
names each action's RAM permission (`<service>:<Action>`), which RAM users and assumed roles must
hold on the action's resources (`sandbox/permission_gate.py`, `sandbox/ram_resources.py`).
`crossdeploy sandbox actions` prints this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.call import Call
from sandbox.services import cr, ram, sts, vpc
from sandbox.services.sae import apps, change_orders, namespaces, secrets

Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Product:
    code: str
    """Also the RAM service prefix, e.g. `ram` in `ram:CreateRole`."""
    version: str
    style: Literal["RPC", "ROA"]
    host: str
    envelope: Literal["pop", "cr", "sae"]
    regional: bool
    """Answers for one region per request (sandbox/regions.py); RAM and STS are global."""


@dataclass(frozen=True)
class Route:
    product: Product
    action: str
    handler: Handler
    write: bool = False
    method: str = "POST"
    path: str = "/"
    permission: str = ""
    """RAM action name when it differs from `<product>:<action>`."""
    anonymous: bool = False
    """Served without a signature: the request carries its own credential (AssumeRoleWithOIDC's
    token; the STS SDK calls it with `auth_type='Anonymous'`)."""
    trace_id: bool = True
    """SAE's envelope carries TraceId, except where the action's SDK response model has none
    (ListApplications, ListAppVersions: alibabacloud_sae20190506 models)."""

    @property
    def ram_action(self) -> str:
        return self.permission or f"{self.product.code}:{self.action}"


STS = Product("sts", "2015-04-01", "RPC", "sts.aliyuncs.com", "pop", regional=False)
RAM = Product("ram", "2015-05-01", "RPC", "ram.aliyuncs.com", "pop", regional=False)
VPC = Product("vpc", "2016-04-28", "RPC", "vpc.aliyuncs.com", "pop", regional=True)
CR = Product("cr", "2018-12-01", "RPC", "cr.aliyuncs.com", "cr", regional=True)
SAE = Product("sae", "2019-05-06", "ROA", "sae.aliyuncs.com", "sae", regional=True)

PRODUCTS = (STS, RAM, VPC, CR, SAE)

ROUTES: tuple[Route, ...] = (
    # STS
    Route(STS, "AssumeRole", sts.assume_role),
    Route(STS, "AssumeRoleWithOIDC", sts.assume_role_with_oidc, anonymous=True),
    Route(STS, "GetCallerIdentity", sts.get_caller_identity),
    # RAM
    Route(RAM, "CreateRole", ram.create_role, write=True),
    Route(RAM, "GetRole", ram.get_role),
    Route(RAM, "UpdateRole", ram.update_role, write=True),
    Route(RAM, "DeleteRole", ram.delete_role, write=True),
    Route(RAM, "ListRoles", ram.list_roles),
    Route(RAM, "CreatePolicy", ram.create_policy, write=True),
    Route(RAM, "GetPolicy", ram.get_policy),
    Route(RAM, "GetPolicyVersion", ram.get_policy_version),
    Route(RAM, "CreatePolicyVersion", ram.create_policy_version, write=True),
    Route(RAM, "ListPolicyVersions", ram.list_policy_versions),
    Route(RAM, "DeletePolicyVersion", ram.delete_policy_version, write=True),
    Route(RAM, "SetDefaultPolicyVersion", ram.set_default_policy_version, write=True),
    Route(RAM, "DeletePolicy", ram.delete_policy, write=True),
    Route(RAM, "AttachPolicyToRole", ram.attach_policy_to_role, write=True),
    Route(RAM, "DetachPolicyFromRole", ram.detach_policy_from_role, write=True),
    Route(RAM, "ListPoliciesForRole", ram.list_policies_for_role),
    Route(RAM, "ListEntitiesForPolicy", ram.list_entities_for_policy),
    Route(RAM, "ListPoliciesForUser", ram.list_policies_for_user),
    Route(RAM, "ListGroupsForUser", ram.list_groups_for_user),
    Route(RAM, "ListPoliciesForGroup", ram.list_policies_for_group),
    # VPC
    Route(VPC, "DescribeVpcs", vpc.describe_vpcs),
    Route(VPC, "DescribeVpcAttribute", vpc.describe_vpc_attribute),
    Route(VPC, "DescribeVSwitches", vpc.describe_vswitches),
    Route(VPC, "DescribeVSwitchAttributes", vpc.describe_vswitch_attributes),
    Route(VPC, "DescribeNatGateways", vpc.describe_nat_gateways),
    Route(VPC, "DescribeSnatTableEntries", vpc.describe_snat_table_entries),
    Route(VPC, "DescribeEipAddresses", vpc.describe_eip_addresses),
    # ACR Enterprise Edition
    Route(CR, "ListInstance", cr.list_instance),
    Route(CR, "GetInstance", cr.get_instance),
    Route(CR, "ListInstanceEndpoint", cr.list_instance_endpoint),
    Route(CR, "GetInstanceEndpoint", cr.get_instance_endpoint),
    Route(CR, "UpdateInstanceEndpointStatus", cr.update_instance_endpoint_status, write=True),
    Route(
        CR, "CreateInstanceEndpointAclPolicy", cr.create_instance_endpoint_acl_policy, write=True
    ),
    Route(
        CR, "DeleteInstanceEndpointAclPolicy", cr.delete_instance_endpoint_acl_policy, write=True
    ),
    Route(CR, "GetInstanceVpcEndpoint", cr.get_instance_vpc_endpoint),
    Route(
        CR,
        "CreateInstanceVpcEndpointLinkedVpc",
        cr.create_instance_vpc_endpoint_linked_vpc,
        write=True,
    ),
    Route(
        CR,
        "DeleteInstanceVpcEndpointLinkedVpc",
        cr.delete_instance_vpc_endpoint_linked_vpc,
        write=True,
    ),
    Route(CR, "ListRepository", cr.list_repository),
    Route(CR, "GetRepository", cr.get_repository),
    Route(CR, "ListRepoTag", cr.list_repo_tag, permission="cr:ListRepositoryTag"),
    # ACR's GetRepoTag page, "Authorization information": cr:ListRepositoryTag
    # (https://www.alibabacloud.com/help/doc-detail/371968.htm).
    Route(CR, "GetRepoTag", cr.get_repo_tag, method="GET", permission="cr:ListRepositoryTag"),
    Route(CR, "GetAuthorizationToken", cr.get_authorization_token),
    # SAE (ROA: found by method and path)
    Route(
        SAE,
        "DescribeNamespaceList",
        namespaces.describe_namespace_list,
        method="GET",
        path="/pop/v1/sam/namespace/describeNamespaceList",
    ),
    Route(
        SAE,
        "DescribeNamespace",
        namespaces.describe_namespace,
        method="GET",
        path="/pop/v1/paas/namespace",
    ),
    Route(
        SAE,
        "CreateSecret",
        secrets.create_secret,
        write=True,
        method="POST",
        path="/pop/v1/sam/secret/secret",
    ),
    Route(
        SAE, "ListSecrets", secrets.list_secrets, method="GET", path="/pop/v1/sam/secret/secrets"
    ),
    Route(
        SAE,
        "DescribeSecret",
        secrets.describe_secret,
        method="GET",
        path="/pop/v1/sam/secret/secret",
    ),
    Route(
        SAE,
        "UpdateSecret",
        secrets.update_secret,
        write=True,
        method="PUT",
        path="/pop/v1/sam/secret/secret",
    ),
    Route(
        SAE,
        "DeleteSecret",
        secrets.delete_secret,
        write=True,
        method="DELETE",
        path="/pop/v1/sam/secret/secret",
    ),
    Route(
        SAE,
        "CreateApplication",
        apps.create_application,
        write=True,
        method="POST",
        path="/pop/v1/sam/app/createApplication",
    ),
    Route(
        SAE,
        "DeployApplication",
        apps.deploy_application,
        write=True,
        method="POST",
        path="/pop/v1/sam/app/deployApplication",
    ),
    Route(
        SAE,
        "ListApplications",
        apps.list_applications,
        method="GET",
        path="/pop/v1/sam/app/listApplications",
        trace_id=False,
    ),
    Route(
        SAE,
        "DescribeApplicationConfig",
        apps.describe_application_config,
        method="GET",
        path="/pop/v1/sam/app/describeApplicationConfig",
    ),
    Route(
        SAE,
        "DescribeApplicationStatus",
        apps.describe_application_status,
        method="GET",
        path="/pop/v1/sam/app/describeApplicationStatus",
    ),
    Route(
        SAE,
        "DescribeApplicationGroups",
        apps.describe_application_groups,
        method="GET",
        path="/pop/v1/sam/app/describeApplicationGroups",
    ),
    Route(
        SAE,
        "DescribeApplicationInstances",
        apps.describe_application_instances,
        method="GET",
        path="/pop/v1/sam/app/describeApplicationInstances",
    ),
    Route(
        SAE,
        "ListAppVersions",
        apps.list_app_versions,
        method="GET",
        path="/pop/v1/sam/app/listAppVersions",
        trace_id=False,
    ),
    Route(
        SAE,
        "RollbackApplication",
        apps.rollback_application,
        write=True,
        method="PUT",
        path="/pop/v1/sam/app/rollbackApplication",
    ),
    Route(
        SAE,
        "StopApplication",
        apps.stop_application,
        write=True,
        method="PUT",
        path="/pop/v1/sam/app/stopApplication",
    ),
    Route(
        SAE,
        "StartApplication",
        apps.start_application,
        write=True,
        method="PUT",
        path="/pop/v1/sam/app/startApplication",
    ),
    Route(
        SAE,
        "DeleteApplication",
        apps.delete_application,
        write=True,
        method="DELETE",
        path="/pop/v1/sam/app/deleteApplication",
    ),
    Route(
        SAE,
        "DescribeNamespaceResources",
        apps.describe_namespace_resources,
        method="GET",
        path="/pop/v1/sam/namespace/describeNamespaceResources",
    ),
    Route(
        SAE,
        "DescribeChangeOrder",
        change_orders.describe_change_order,
        method="GET",
        path="/pop/v1/sam/changeorder/DescribeChangeOrder",
    ),
    Route(
        SAE,
        "ListChangeOrders",
        change_orders.list_change_orders,
        method="GET",
        path="/pop/v1/sam/changeorder/ListChangeOrders",
    ),
    Route(
        SAE,
        "DescribePipeline",
        change_orders.describe_pipeline,
        method="GET",
        path="/pop/v1/sam/changeorder/DescribePipeline",
    ),
    Route(
        SAE,
        "AbortChangeOrder",
        change_orders.abort_change_order,
        write=True,
        method="PUT",
        path="/pop/v1/sam/changeorder/AbortChangeOrder",
    ),
    Route(
        SAE,
        "AbortAndRollbackChangeOrder",
        change_orders.abort_and_rollback_change_order,
        write=True,
        method="PUT",
        path="/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder",
    ),
    Route(
        SAE,
        "ConfirmPipelineBatch",
        change_orders.confirm_pipeline_batch,
        write=True,
        method="GET",
        path="/pop/v1/sam/changeorder/ConfirmPipelineBatch",
    ),
)


class RouteTable:
    """Lookups over ROUTES; built once."""

    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        self.products = {p.version: p for p in PRODUCTS}
        self._rpc = {(r.product.version, r.action): r for r in routes if r.product.style == "RPC"}
        self._roa = {
            (r.product.version, r.method, r.path): r for r in routes if r.product.style == "ROA"
        }
        self.routes = routes

    def product(self, version: str) -> Product | None:
        return self.products.get(version)

    def rpc(self, version: str, action: str) -> Route | None:
        return self._rpc.get((version, action))

    def roa(self, version: str, method: str, path: str) -> Route | None:
        return self._roa.get((version, method.upper(), path))
