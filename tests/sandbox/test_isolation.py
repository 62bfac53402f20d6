"""Account isolation: each account sees and changes only its own RAM resources.

The cross-account deploy depends on this boundary: account A can reach B's resources only through
a role of B that trusts A, and the keys of that role then act in B and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.support.clients import UIDS, SdkFactory
from tests.support.policies import trust
from tests.support.ram_setup import assume, make_role

SELF_TRUST = trust(ram=[UIDS["app"]])
READ_ONLY = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:Get*", "Resource": "*"}]}
)


def role_names(ram: Any) -> list[str]:
    return [r.role_name for r in ram.list_roles(ram_models.ListRolesRequest()).body.roles.role]


@pytest.fixture(autouse=True)
def registry_role(sdk: SdkFactory) -> str:
    """Every test starts with one role, `deployer`, in the registry account, trusted by app."""
    return make_role(sdk, "deployer", trust(ram=[UIDS["app"]]))


RoleCall = Callable[[Any], Any]

FOREIGN_ROLE_CALLS: list[tuple[str, RoleCall]] = [
    ("get", lambda ram: ram.get_role(ram_models.GetRoleRequest(role_name="deployer"))),
    (
        "update",
        lambda ram: ram.update_role(
            ram_models.UpdateRoleRequest(role_name="deployer", new_description="mine now")
        ),
    ),
    (
        "attach",
        lambda ram: ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="System", policy_name="AliyunRAMFullAccess", role_name="deployer"
            )
        ),
    ),
    (
        "list-policies",
        lambda ram: ram.list_policies_for_role(
            ram_models.ListPoliciesForRoleRequest(role_name="deployer")
        ),
    ),
    ("delete", lambda ram: ram.delete_role(ram_models.DeleteRoleRequest(role_name="deployer"))),
]


@pytest.mark.parametrize(
    "operation", [op for _, op in FOREIGN_ROLE_CALLS], ids=[n for n, _ in FOREIGN_ROLE_CALLS]
)
def test_another_accounts_role_does_not_exist_for_app(sdk: SdkFactory, operation: RoleCall) -> None:
    """App addressing registry's role by name finds nothing, and registry's role is untouched."""
    registry = sdk.ram("registry")
    before = registry.get_role(ram_models.GetRoleRequest(role_name="deployer")).body.role
    with pytest.raises(ClientException) as refused:
        operation(sdk.ram("app"))
    assert (refused.value.code, refused.value.status_code) == ("EntityNotExist.Role", 404)
    after = registry.get_role(ram_models.GetRoleRequest(role_name="deployer")).body.role
    assert after.to_map() == before.to_map()
    attached = registry.list_policies_for_role(
        ram_models.ListPoliciesForRoleRequest(role_name="deployer")
    )
    assert attached.body.policies.policy == []


def test_each_account_lists_only_its_own_roles(sdk: SdkFactory) -> None:
    """The same role name may exist in both accounts; each list shows its own copy only."""
    app, registry = sdk.ram("app"), sdk.ram("registry")
    assert role_names(app) == []
    app.create_role(
        ram_models.CreateRoleRequest(role_name="deployer", assume_role_policy_document=SELF_TRUST)
    )
    app.create_role(
        ram_models.CreateRoleRequest(role_name="app-only", assume_role_policy_document=SELF_TRUST)
    )
    assert role_names(app) == ["deployer", "app-only"]
    assert role_names(registry) == ["deployer"]
    app_copy = app.get_role(ram_models.GetRoleRequest(role_name="deployer")).body.role
    registry_copy = registry.get_role(ram_models.GetRoleRequest(role_name="deployer")).body.role
    assert app_copy.arn == f"acs:ram::{UIDS['app']}:role/deployer"
    assert registry_copy.arn == f"acs:ram::{UIDS['registry']}:role/deployer"
    assert app_copy.role_id != registry_copy.role_id
    app.delete_role(ram_models.DeleteRoleRequest(role_name="deployer"))
    assert role_names(registry) == ["deployer"]


def test_custom_policies_are_per_account(sdk: SdkFactory) -> None:
    """App can neither read registry's custom policy nor attach it to its own role."""
    registry, app = sdk.ram("registry"), sdk.ram("app")
    registry.create_policy(
        ram_models.CreatePolicyRequest(policy_name="pull-images", policy_document=READ_ONLY)
    )
    app.create_role(
        ram_models.CreateRoleRequest(role_name="app-role", assume_role_policy_document=SELF_TRUST)
    )
    with pytest.raises(ClientException) as unseen:
        app.get_policy(ram_models.GetPolicyRequest(policy_name="pull-images", policy_type="Custom"))
    assert (unseen.value.code, unseen.value.status_code) == ("EntityNotExist.Policy", 404)
    with pytest.raises(ClientException) as unattachable:
        app.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="Custom", policy_name="pull-images", role_name="app-role"
            )
        )
    assert unattachable.value.code == "EntityNotExist.Policy"
    policy = registry.get_policy(
        ram_models.GetPolicyRequest(policy_name="pull-images", policy_type="Custom")
    )
    assert policy.body.policy.attachment_count == 0


def test_role_keys_act_only_in_the_roles_account(sdk: SdkFactory) -> None:
    """STS keys of registry's role read and write registry's RAM, never app's."""
    sdk.ram("registry").attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="System", policy_name="AliyunRAMFullAccess", role_name="deployer"
        )
    )
    sdk.ram("app").create_role(
        ram_models.CreateRoleRequest(role_name="app-only", assume_role_policy_document=SELF_TRUST)
    )
    arn = f"acs:ram::{UIDS['registry']}:role/deployer"
    creds = assume(sdk, arn, account="app").credentials
    as_role = sdk.ram(
        key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token
    )

    assert role_names(as_role) == ["deployer"]
    with pytest.raises(ClientException) as unseen:
        as_role.get_role(ram_models.GetRoleRequest(role_name="app-only"))
    assert unseen.value.code == "EntityNotExist.Role"
    as_role.create_role(
        ram_models.CreateRoleRequest(
            role_name="made-by-role", assume_role_policy_document=SELF_TRUST
        )
    )
    assert role_names(sdk.ram("registry")) == ["deployer", "made-by-role"]
    assert role_names(sdk.ram("app")) == ["app-only"]
