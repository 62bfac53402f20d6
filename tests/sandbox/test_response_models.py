"""Every emulated action's answer fits the official SDK's response model (issue 15, item 4).

The official Python SDKs are the closest machine-readable contract for response shapes (the
OpenAPI metadata has none). A field the sandbox sends that the model lacks is one the SDK drops:
a program written against the sandbox could rely on it and break on the real cloud. So every
action in the route table is called here through its SDK client, its raw body is recorded (a
client subclass that keeps what `call_api` returned, over real HTTP), and the body is read into
the SDK's `<Action>ResponseBody` model: whatever the model's `to_map()` does not give back is a
field it lacks. Known extras are listed in ALLOWED_EXTRAS with the document that shows them.
"""

from __future__ import annotations

import base64
import importlib
import json
from typing import Any

from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_vpc20160428 import models as vpc_models

from sandbox.routes import ROUTES
from tests.support.clients import UIDS, SdkFactory
from tests.support.oidc import OIDC_ROLE_ARN, PROVIDER_ARN, oidc_token
from tests.support.sae_setup import IMAGE, create_app, ready_cross_account, wait_for

ALLOWED_EXTRAS: dict[tuple[str, str], str] = {}
"""(product, dotted path of a field the SDK model lacks) -> the Alibaba document showing it."""

Seen = list[tuple[str, str, Any]]
"""(SDK module such as `ram20150501`, action, raw body) of every answer."""


def _recording(client_class: type, module: str, seen: Seen) -> type:
    class Recording(client_class):  # type: ignore[misc]
        """The SDK client, keeping each raw answer it reads into its response model."""

        def call_api(self, params: Any, request: Any, runtime: Any) -> dict[str, Any]:
            result: dict[str, Any] = super().call_api(params, request, runtime)
            seen.append((module, params.action, result.get("body")))
            return result

        def do_rpcrequest(self, action: str, *args: Any) -> dict[str, Any]:
            """The legacy RPC path, which anonymous actions (AssumeRoleWithOIDC) take."""
            result: dict[str, Any] = super().do_rpcrequest(action, *args)
            seen.append((module, action, result.get("body")))
            return result

    return Recording


class RecordingSdk(SdkFactory):
    """SdkFactory whose clients record every answer in `seen`."""

    def __init__(self, endpoint: str, region: str = "cn-hangzhou", seen: Seen | None = None):
        super().__init__(endpoint, region)
        self.seen: Seen = [] if seen is None else seen

    def in_region(self, region: str) -> RecordingSdk:
        return RecordingSdk(self.endpoint, region, self.seen)

    def client(self, module: str, account: str, **kw: Any) -> Any:
        client_class = importlib.import_module(f"alibabacloud_{module}.client").Client
        return _recording(client_class, module, self.seen)(self.config(account, **kw))


def unknown_fields(body: Any, known: Any, path: str = "") -> list[str]:
    """Dotted paths of what `body` has and `known` (the model's to_map()) lacks."""
    if isinstance(body, dict):
        if not isinstance(known, dict):
            return [path or "(body)"]
        out: list[str] = []
        for key, value in body.items():
            where = f"{path}.{key}" if path else key
            if key not in known:
                out.append(where)
            else:
                out += unknown_fields(value, known[key], where)
        return out
    if isinstance(body, list) and isinstance(known, list):
        return sorted(
            {
                f
                for b, k in zip(body, known, strict=False)
                for f in unknown_fields(b, k, f"{path}[]")
            }
        )
    return []


def _exercise_sts_oidc(sdk: RecordingSdk) -> None:
    """Against the OIDC world (tests/support/oidc.py): the demo world has no OIDC provider."""
    sdk.sts().assume_role_with_oidc(
        sts_models.AssumeRoleWithOIDCRequest(
            oidcprovider_arn=PROVIDER_ARN,
            role_arn=OIDC_ROLE_ARN,
            oidctoken=oidc_token(),
            role_session_name="models",
        )
    )


def _exercise_ram_groups(sdk: RecordingSdk) -> None:
    """Against the groups world (tests/support/ram_groups.py): the demo world has no RAM user."""
    ram = sdk.ram("app")
    ram.list_policies_for_user(ram_models.ListPoliciesForUserRequest(user_name="reader"))
    ram.list_groups_for_user(ram_models.ListGroupsForUserRequest(user_name="reader"))
    ram.list_policies_for_group(ram_models.ListPoliciesForGroupRequest(group_name="vpc-viewers"))
    ram.list_entities_for_policy(
        ram_models.ListEntitiesForPolicyRequest(policy_name="ListVpcs", policy_type="Custom")
    )


def _exercise_sts_ram(sdk: RecordingSdk) -> None:
    sdk.sts().get_caller_identity()
    ram = sdk.ram()
    trust = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{UIDS['app']}:root"]},
                }
            ],
        }
    )
    role = ram.create_role(
        ram_models.CreateRoleRequest(role_name="models", assume_role_policy_document=trust)
    ).body.role
    ram.get_role(ram_models.GetRoleRequest(role_name="models"))
    ram.update_role(
        ram_models.UpdateRoleRequest(role_name="models", new_assume_role_policy_document=trust)
    )
    ram.list_roles(ram_models.ListRolesRequest())
    sdk.sts().assume_role(
        sts_models.AssumeRoleRequest(role_arn=role.arn, role_session_name="models")
    )
    document = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:Get*", "Resource": "*"}]}
    )
    ram.create_policy(
        ram_models.CreatePolicyRequest(policy_name="models", policy_document=document)
    )
    ram.get_policy(ram_models.GetPolicyRequest(policy_name="models", policy_type="Custom"))
    ram.get_policy_version(
        ram_models.GetPolicyVersionRequest(
            policy_name="models", policy_type="Custom", version_id="v1"
        )
    )
    ram.create_policy_version(
        ram_models.CreatePolicyVersionRequest(policy_name="models", policy_document=document)
    )
    ram.list_policy_versions(
        ram_models.ListPolicyVersionsRequest(policy_name="models", policy_type="Custom")
    )
    ram.set_default_policy_version(
        ram_models.SetDefaultPolicyVersionRequest(policy_name="models", version_id="v2")
    )
    ram.delete_policy_version(
        ram_models.DeletePolicyVersionRequest(policy_name="models", version_id="v1")
    )
    attach = {"policy_type": "Custom", "policy_name": "models", "role_name": "models"}
    ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(**attach))
    ram.list_policies_for_role(ram_models.ListPoliciesForRoleRequest(role_name="models"))
    ram.list_entities_for_policy(
        ram_models.ListEntitiesForPolicyRequest(policy_name="models", policy_type="Custom")
    )
    ram.detach_policy_from_role(ram_models.DetachPolicyFromRoleRequest(**attach))
    ram.delete_policy(ram_models.DeletePolicyRequest(policy_name="models"))
    ram.delete_role(ram_models.DeleteRoleRequest(role_name="models"))


def _exercise_vpc(sdk: RecordingSdk) -> None:
    vpc = sdk.vpc()
    region = sdk.region
    vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region))
    vpc.describe_vpc_attribute(
        vpc_models.DescribeVpcAttributeRequest(region_id=region, vpc_id="vpc-app")
    )
    vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id=region, vpc_id="vpc-app"))
    vpc.describe_vswitch_attributes(
        vpc_models.DescribeVSwitchAttributesRequest(region_id=region, v_switch_id="vsw-app-h")
    )
    gateways = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=region, vpc_id="vpc-app")
    ).body.nat_gateways.nat_gateway
    table = gateways[0].snat_table_ids.snat_table_id[0]
    vpc.describe_snat_table_entries(
        vpc_models.DescribeSnatTableEntriesRequest(region_id=region, snat_table_id=table)
    )
    vpc.describe_eip_addresses(vpc_models.DescribeEipAddressesRequest(region_id=region))


def _exercise_cr(sdk: RecordingSdk) -> None:
    cr = sdk.cr()
    instance = {"instance_id": "cri-demo"}
    cr.list_instance(cr_models.ListInstanceRequest())
    cr.get_instance(cr_models.GetInstanceRequest(**instance))
    cr.list_instance_endpoint(cr_models.ListInstanceEndpointRequest(**instance))
    cr.get_instance_endpoint(
        cr_models.GetInstanceEndpointRequest(**instance, endpoint_type="internet")
    )
    cr.update_instance_endpoint_status(
        cr_models.UpdateInstanceEndpointStatusRequest(
            **instance, endpoint_type="internet", enable=True
        )
    )
    entry = {"endpoint_type": "internet", "entry": "10.0.0.0/8"}
    cr.create_instance_endpoint_acl_policy(
        cr_models.CreateInstanceEndpointAclPolicyRequest(**instance, **entry, comment="models")
    )
    cr.delete_instance_endpoint_acl_policy(
        cr_models.DeleteInstanceEndpointAclPolicyRequest(**instance, **entry)
    )
    cr.get_instance_vpc_endpoint(cr_models.GetInstanceVpcEndpointRequest(**instance))
    link = {"vpc_id": "vpc-reg", "vswitch_id": "vsw-reg-h", "module_name": "Registry"}
    cr.delete_instance_vpc_endpoint_linked_vpc(
        cr_models.DeleteInstanceVpcEndpointLinkedVpcRequest(**instance, **link)
    )
    cr.create_instance_vpc_endpoint_linked_vpc(
        cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(**instance, **link)
    )
    cr.list_repository(cr_models.ListRepositoryRequest(**instance))
    repo = cr.get_repository(
        cr_models.GetRepositoryRequest(**instance, repo_namespace_name="shop", repo_name="web")
    ).body
    cr.list_repo_tag(cr_models.ListRepoTagRequest(**instance, repo_id=repo.repo_id))
    cr.get_repo_tag(cr_models.GetRepoTagRequest(**instance, repo_id=repo.repo_id, tag="1.0"))
    cr.get_authorization_token(cr_models.GetAuthorizationTokenRequest(**instance))


def _exercise_sae(sdk: RecordingSdk) -> None:
    sae = sdk.sae()
    namespace = "cn-hangzhou:demo"
    sae.describe_namespace_list(sae_models.DescribeNamespaceListRequest())
    sae.describe_namespace(sae_models.DescribeNamespaceRequest(namespace_id=namespace))
    sae.describe_namespace_resources(
        sae_models.DescribeNamespaceResourcesRequest(namespace_id=namespace)
    )
    login = {"username": "u", "password": "p", "auth": base64.b64encode(b"u:p").decode()}
    config = json.dumps({"auths": {"demo-registry.cn-hangzhou.cr.aliyuncs.com": login}})
    secret_data = json.dumps({".dockerconfigjson": base64.b64encode(config.encode()).decode()})
    secret_id = sae.create_secret(
        sae_models.CreateSecretRequest(
            namespace_id=namespace,
            secret_name="models",
            secret_type="kubernetes.io/dockerconfigjson",
            secret_data=sae_models.CreateSecretRequestSecretData(secret_data=secret_data),
        )
    ).body.data.secret_id
    secret = {"namespace_id": namespace, "secret_id": secret_id}
    sae.list_secrets(sae_models.ListSecretsRequest(namespace_id=namespace))
    sae.describe_secret(sae_models.DescribeSecretRequest(**secret))
    sae.update_secret(
        sae_models.UpdateSecretRequest(
            **secret,
            secret_data=sae_models.UpdateSecretRequestSecretData(secret_data=secret_data),
        )
    )
    sae.delete_secret(sae_models.DeleteSecretRequest(**secret))

    arn = ready_cross_account(sdk)
    app_id, created = create_app(sdk, arn)
    wait_for(sdk, created)
    app = {"app_id": app_id}
    sae.list_applications(sae_models.ListApplicationsRequest())
    sae.describe_application_config(sae_models.DescribeApplicationConfigRequest(**app))
    sae.describe_application_status(sae_models.DescribeApplicationStatusRequest(**app))
    group = sae.describe_application_groups(
        sae_models.DescribeApplicationGroupsRequest(**app)
    ).body.data[0]
    sae.describe_application_instances(
        sae_models.DescribeApplicationInstancesRequest(**app, group_id=group.group_id)
    )
    sae.list_change_orders(sae_models.ListChangeOrdersRequest(**app))
    order = sae.describe_change_order(
        sae_models.DescribeChangeOrderRequest(change_order_id=created)
    ).body.data
    sae.describe_pipeline(
        sae_models.DescribePipelineRequest(pipeline_id=order.pipelines[0].pipeline_id)
    )
    manual = '{"type":"BatchUpdate","batchUpdate":{"batch":2,"releaseType":"manual"}}'
    deploy = {**app, "image_url": IMAGE.replace(":1.1", ":1.0"), "update_strategy": manual}
    confirmed = _waiting_batch(sdk, deploy)
    sae.confirm_pipeline_batch(
        sae_models.ConfirmPipelineBatchRequest(
            pipeline_id=confirmed.pipelines[1].pipeline_id, confirm=True
        )
    )
    wait_for(sdk, confirmed.change_order_id)
    aborted = _waiting_batch(sdk, {**deploy, "image_url": IMAGE})
    sae.abort_change_order(
        sae_models.AbortChangeOrderRequest(change_order_id=aborted.change_order_id)
    )
    wait_for(sdk, aborted.change_order_id)
    rolled = _waiting_batch(sdk, {**deploy, "image_url": IMAGE})
    sae.abort_and_rollback_change_order(
        sae_models.AbortAndRollbackChangeOrderRequest(change_order_id=rolled.change_order_id)
    )
    _settle(sdk, app_id)
    versions = sae.list_app_versions(sae_models.ListAppVersionsRequest(**app)).body.data
    sae.rollback_application(
        sae_models.RollbackApplicationRequest(**app, version_id=versions[-1].id)
    )
    _settle(sdk, app_id)
    sae.stop_application(sae_models.StopApplicationRequest(**app))
    _settle(sdk, app_id)
    sae.start_application(sae_models.StartApplicationRequest(**app))
    _settle(sdk, app_id)
    sae.delete_application(sae_models.DeleteApplicationRequest(**app))


def _waiting_batch(sdk: RecordingSdk, deploy: dict[str, Any]) -> Any:
    """A two-batch manual release started and waiting for its second batch."""
    order_id = (
        sdk.sae()
        .deploy_application(sae_models.DeployApplicationRequest(**deploy))
        .body.data.change_order_id
    )
    waiting = wait_for(sdk, order_id, until={8, 2, 3})
    assert waiting.status == 8, waiting.status
    return waiting


def _settle(sdk: RecordingSdk, app_id: str) -> None:
    """Let the app's newest change order end, confirming any batch it waits on (a rollback
    releases as the app's last strategy did: manually)."""
    sae = sdk.sae()
    status = sae.describe_application_status(
        sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    ).body.data
    while (order := wait_for(sdk, status.last_change_order_id, until={2, 3, 6, 8, 10})).status == 8:
        waiting = next(p for p in order.pipelines if p.status != 2)  # the first not done
        sae.confirm_pipeline_batch(
            sae_models.ConfirmPipelineBatchRequest(pipeline_id=waiting.pipeline_id, confirm=True)
        )


def _product(module: str) -> str:
    """`ram20150501` -> `ram`, the route table's product code."""
    return module.rstrip("0123456789")


def test_every_action_answers_in_its_sdk_models_shape(
    fast_sdk: SdkFactory, oidc_sdk: SdkFactory, ram_groups_sdk: SdkFactory
) -> None:
    sdk = RecordingSdk(fast_sdk.endpoint)
    _exercise_sts_oidc(RecordingSdk(oidc_sdk.endpoint, seen=sdk.seen))
    _exercise_ram_groups(RecordingSdk(ram_groups_sdk.endpoint, seen=sdk.seen))
    _exercise_sts_ram(sdk)
    _exercise_vpc(sdk)
    _exercise_cr(sdk)
    _exercise_sae(sdk)

    called = {(_product(module), action) for module, action, _ in sdk.seen}
    emulated = {(route.product.code, route.action) for route in ROUTES}
    assert emulated - called == set(), "emulated actions this test does not call"

    extras: dict[str, set[str]] = {}
    for module, action, body in sdk.seen:
        product = _product(module)
        models = importlib.import_module(f"alibabacloud_{module}.models")
        model = getattr(models, f"{action}ResponseBody")().from_map(body)
        for field in unknown_fields(body, model.to_map()):
            if (product, field) not in ALLOWED_EXTRAS:
                extras.setdefault(f"{product}:{action}", set()).add(field)
    assert extras == {}, f"fields the SDK models lack: {extras}"
