"""Roles made, listed and assumed through the official SDKs, as a user would: a role of account
`registry` with a trust policy and system policies attached, and STS AssumeRole into it."""

from __future__ import annotations

from typing import Any

from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models

from tests.support.clients import UIDS, SdkFactory
from tests.support.policies import trust


def make_role(sdk: SdkFactory, name: str, trust_policy: str, *attach: str) -> str:
    ram = sdk.ram("registry")
    role = ram.create_role(
        ram_models.CreateRoleRequest(role_name=name, assume_role_policy_document=trust_policy)
    )
    for policy in attach:
        ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="System", policy_name=policy, role_name=name
            )
        )
    return str(role.body.role.arn)


def assume(sdk: SdkFactory, arn: str, account: str = "app", **kw: Any) -> Any:
    request = sts_models.AssumeRoleRequest(role_arn=arn, role_session_name="tests", **kw)
    return sdk.sts(account).assume_role(request).body


def list_roles(sdk: SdkFactory, account: str = "registry") -> list[str]:
    body = sdk.ram(account).list_roles(ram_models.ListRolesRequest()).body
    return [r.role_name for r in body.roles.role]


def create_role(sdk: SdkFactory, name: str, account: str = "registry") -> Any:
    """A role `name` that account `app` may assume, with nothing attached."""
    request = ram_models.CreateRoleRequest(
        role_name=name, assume_role_policy_document=trust(ram=[UIDS["app"]])
    )
    return sdk.ram(account).create_role(request)
