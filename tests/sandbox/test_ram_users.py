"""RAM users through the official SDKs: who they are, and only what their policies allow.

A world written here gives each account RAM users with keys and attached policies (custom and
system). Their requests are judged by those policies, refused with each product's no-permission
code and RAM's AccessDeniedDetail; the accounts' root keys keep full access.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models

from sandbox.services.ram import user_id
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, SdkFactory
from tests.support.policies import trust
from tests.support.sae_setup import create_app, ready_cross_account, wait_for
from tests.support.worlds import FAST_TIMING, demo_world_data, fresh_admin, write_world

REGION = "cn-hangzhou"
APP, REGISTRY = UIDS["app"], UIDS["registry"]
VIEWER = ("LTAIuserViewer0001", "viewer-secret")
SCOPED = ("LTAIuserScoped0001", "scoped-secret")
PULLER = ("LTAIuserPuller0001", "puller-secret")
ADMIN = ("LTAIuserAdmin00001", "admin-secret")
STOPPER = ("LTAIuserStopper001", "stopper-secret")


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def allow(action: str | list[str], resource: str = "*", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def user(name: str, key: tuple[str, str], *policies: str) -> dict[str, Any]:
    return {
        "name": name,
        "access_keys": [{"id": key[0], "secret": key[1]}],
        "policies": list(policies),
    }


def users_world() -> dict[str, Any]:
    """The demo world plus RAM users in both accounts."""
    data = demo_world_data(**FAST_TIMING)
    data["ram"] = {
        "app": {
            "policies": [
                {
                    "name": "NoVSwitches",
                    "document": policy(allow("vpc:DescribeVSwitches", effect="Deny")),
                },
                {
                    "name": "StopDemoApps",
                    "document": policy(
                        allow(
                            "sae:StopApplication",
                            f"acs:sae:{REGION}:{APP}:application/{REGION}:demo/*",
                        )
                    ),
                },
                {
                    "name": "OneVpc",
                    "document": policy(
                        allow("vpc:DescribeVpcAttribute", f"acs:vpc:{REGION}:{APP}:vpc/vpc-app"),
                        allow("sae:DescribeNamespaceList", f"acs:sae:*:{APP}:*"),
                    ),
                },
            ],
            "users": [
                user("viewer", VIEWER, "AliyunVPCReadOnlyAccess", "NoVSwitches"),
                user("scoped", SCOPED, "OneVpc"),
                user("admin", ADMIN, "AdministratorAccess"),
                user("stopper", STOPPER, "StopDemoApps"),
            ],
        },
        "registry": {
            "roles": [],
            "policies": [
                {
                    "name": "PullDemo",
                    "document": policy(
                        allow("cr:GetInstance", f"acs:cr:*:{REGISTRY}:instance/cri-demo"),
                        allow("cr:GetAuthorizationToken"),
                    ),
                }
            ],
            "users": [user("puller", PULLER, "PullDemo")],
        },
    }
    return data


@pytest.fixture(scope="module")
def users_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    path = write_world(users_world(), tmp_path_factory.mktemp("ram-users"))
    with SandboxProcess(world=path) as process:
        yield process


@pytest.fixture
def users_admin(users_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    yield from fresh_admin(users_process)


@pytest.fixture
def sdk(users_admin: SandboxAdmin, users_process: SandboxProcess) -> SdkFactory:
    return SdkFactory(users_process.endpoint)


def refused(call: Callable[[], Any]) -> ClientException:
    with pytest.raises(ClientException) as err:
        call()
    return err.value


def detail(err: ClientException) -> dict[str, Any]:
    found: dict[str, Any] = err.access_denied_detail or {}
    return found


def test_caller_identity_is_the_user(sdk: SdkFactory) -> None:
    body = sdk.sts(key=VIEWER).get_caller_identity().body
    assert body.identity_type == "RAMUser"
    assert body.arn == f"acs:ram::{APP}:user/viewer"
    assert body.account_id == APP
    assert body.user_id == body.principal_id == user_id(APP, "viewer")
    assert len(body.user_id) == 16 and body.user_id.isdigit()
    assert body.role_id is None


def test_allowed_actions_pass_and_others_are_refused(sdk: SdkFactory) -> None:
    vpc = sdk.vpc(key=VIEWER)
    listed = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body
    assert [v.vpc_id for v in listed.vpcs.vpc] == ["vpc-app"]
    sae = refused(
        lambda: sdk.sae(key=VIEWER).describe_namespace_list(
            sae_models.DescribeNamespaceListRequest()
        )
    )
    assert (sae.code, sae.status_code) == ("Forbidden.RAM", 403)
    ram = refused(lambda: sdk.ram(key=VIEWER).list_roles(ram_models.ListRolesRequest()))
    assert (ram.code, ram.status_code) == ("NoPermission", 403)
    assert detail(ram)["AuthAction"] == "ram:ListRoles"
    assert detail(ram)["AuthPrincipalType"] == "SubUser"
    assert detail(ram)["AuthPrincipalOwnerId"] == APP
    assert detail(ram)["AuthPrincipalDisplayName"] == "viewer"
    assert detail(ram)["NoPermissionType"] == "ImplicitDeny"
    decoded = json.loads(base64.b64decode(detail(ram)["EncodedDiagnosticMessage"]))
    assert decoded["AuthResource"] == f"acs:ram:*:{APP}:role/*"


def test_deny_beats_allow(sdk: SdkFactory) -> None:
    err = refused(
        lambda: sdk.vpc(key=VIEWER).describe_vswitches(
            vpc_models.DescribeVSwitchesRequest(region_id=REGION)
        )
    )
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)
    assert detail(err)["NoPermissionType"] == "ExplicitDeny"
    assert detail(err)["AuthAction"] == "vpc:DescribeVSwitches"


def test_a_statement_scoped_to_one_resource_grants_that_resource_only(sdk: SdkFactory) -> None:
    vpc = sdk.vpc(key=SCOPED)
    body = vpc.describe_vpc_attribute(
        vpc_models.DescribeVpcAttributeRequest(region_id=REGION, vpc_id="vpc-app")
    ).body
    assert body.vpc_id == "vpc-app"
    other = refused(
        lambda: vpc.describe_vpc_attribute(
            vpc_models.DescribeVpcAttributeRequest(region_id=REGION, vpc_id="vpc-other")
        )
    )
    assert other.code == "Forbidden.RAM"
    listing = refused(lambda: vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)))
    assert listing.code == "Forbidden.RAM"


def test_an_action_without_resource_level_permission_needs_a_star(sdk: SdkFactory) -> None:
    """SAE's DescribeNamespaceList is authorized on all resources: a statement scoped to the
    account's SAE resources does not grant it, one on `*` does."""
    request = sae_models.DescribeNamespaceListRequest()
    err = refused(lambda: sdk.sae(key=SCOPED).describe_namespace_list(request))
    assert err.code == "Forbidden.RAM"
    assert sdk.sae(key=ADMIN).describe_namespace_list(request).body.success is True


def test_stop_application_is_authorized_on_the_application_in_its_namespace(
    sdk: SdkFactory,
) -> None:
    """StopApplication's resource is acs:sae:<region>:<uid>:application/<namespace>/<app>."""
    role = ready_cross_account(sdk)
    in_demo, created = create_app(sdk, role)
    wait_for(sdk, created)
    isolated, created = create_app(
        sdk, role, app_name="other-web", namespace_id=f"{REGION}:isolated"
    )
    wait_for(sdk, created)
    stopper = sdk.sae(key=STOPPER)
    err = refused(
        lambda: stopper.stop_application(sae_models.StopApplicationRequest(app_id=isolated))
    )
    assert err.code == "Forbidden.RAM"
    decoded = json.loads(base64.b64decode(detail(err)["EncodedDiagnosticMessage"]))
    assert decoded["AuthResource"] == (
        f"acs:sae:{REGION}:{APP}:application/{REGION}:isolated/{isolated}"
    )
    stopped = stopper.stop_application(sae_models.StopApplicationRequest(app_id=in_demo))
    assert stopped.body.data.change_order_id


def test_registry_user_gets_the_instance_and_a_token_only(sdk: SdkFactory) -> None:
    cr = sdk.cr(key=PULLER)
    got = cr.get_instance(cr_models.GetInstanceRequest(instance_id="cri-demo")).body
    assert got.is_success is True
    token = cr.get_authorization_token(
        cr_models.GetAuthorizationTokenRequest(instance_id="cri-demo")
    ).body
    assert token.authorization_token
    err = refused(
        lambda: cr.list_repository(cr_models.ListRepositoryRequest(instance_id="cri-demo"))
    )
    assert (err.code, err.status_code) == ("NoPrivilege", 403)
    assert detail(err)["AuthAction"] == "cr:ListRepository"


def test_a_user_of_one_account_cannot_touch_the_other(sdk: SdkFactory) -> None:
    """Even with AdministratorAccess: a user acts in its own account, and another account's role
    can be assumed only if that role trusts it."""
    cr = sdk.cr(key=ADMIN)
    answer = cr.get_instance(cr_models.GetInstanceRequest(instance_id="cri-demo")).body
    assert answer.is_success is False
    ram = sdk.ram("registry")
    ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="own-only",
            assume_role_policy_document=trust(ram=[f"acs:ram::{REGISTRY}:root"]),
        )
    )
    ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="for-admin",
            assume_role_policy_document=trust(ram=[f"acs:ram::{APP}:user/admin"]),
        )
    )
    sts = sdk.sts(key=ADMIN)

    def assume(name: str) -> Any:
        request = sts_models.AssumeRoleRequest(
            role_arn=f"acs:ram::{REGISTRY}:role/{name}", role_session_name="tests"
        )
        return sts.assume_role(request).body

    assert refused(lambda: assume("own-only")).code == "NoPermission"
    assert assume("for-admin").assumed_role_user.arn == f"acs:ram::{REGISTRY}:role/for-admin/tests"
    viewer = refused(
        lambda: sdk.sts(key=VIEWER).assume_role(
            sts_models.AssumeRoleRequest(
                role_arn=f"acs:ram::{REGISTRY}:role/for-admin", role_session_name="tests"
            )
        )
    )
    assert detail(viewer)["AuthAction"] == "sts:AssumeRole"


def test_root_keys_keep_full_access(sdk: SdkFactory) -> None:
    assert sdk.sts("app").get_caller_identity().body.identity_type == "Account"
    sdk.ram("app").list_roles(ram_models.ListRolesRequest())
    sdk.vpc("app").describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id=REGION))
    sdk.cr("registry").list_repository(cr_models.ListRepositoryRequest(instance_id="cri-demo"))


def test_a_policy_attached_to_a_user_cannot_be_deleted(sdk: SdkFactory) -> None:
    err = refused(
        lambda: sdk.ram("app").delete_policy(ram_models.DeletePolicyRequest(policy_name="OneVpc"))
    )
    assert (err.code, err.status_code) == ("DeleteConflict.Policy.User", 409)


def test_the_world_file_is_written_by_the_test(tmp_path: Path) -> None:
    """The users world loads (the schema's checks are in tests/test_world_ram_users.py)."""
    from sandbox.world import load_world

    world = load_world(write_world(users_world(), tmp_path))
    assert [u.name for u in world.ram["app"].users] == ["viewer", "scoped", "admin", "stopper"]


def test_a_policy_lists_the_users_it_is_attached_to(sdk: SdkFactory) -> None:
    ram = sdk.ram("app")
    for policy_type, name, users in (
        ("Custom", "OneVpc", ["scoped"]),
        ("System", "AliyunVPCReadOnlyAccess", ["viewer"]),
    ):
        entities = ram.list_entities_for_policy(
            ram_models.ListEntitiesForPolicyRequest(policy_type=policy_type, policy_name=name)
        ).body
        assert [u.user_name for u in entities.users.user] == users
        assert entities.users.user[0].user_id == user_id(APP, users[0])
        got = ram.get_policy(
            ram_models.GetPolicyRequest(policy_type=policy_type, policy_name=name)
        ).body
        assert got.policy.attachment_count == 1
