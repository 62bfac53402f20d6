"""RAM user groups through the official SDKs: a user reads its own policies and groups, and its
groups' policies count for it; GetRepoTag is authorized as cr:ListRepositoryTag.

The world (tests/support/ram_groups.py) gives `reader` the right to read its RAM only through its
group `ram-readers`, and the right to list VPCs only through `vpc-viewers`; `loner` has the same
own policy and no group. One sandbox serves the session (`ram_groups_process`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models

from sandbox.services.ram import group_id
from tests.support.clients import SdkFactory
from tests.support.ram_groups import APP, LONER, OLD_TAGGER, READER, REGISTRY, TAGGER

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def refused(call: Callable[[], Any]) -> ClientException:
    with pytest.raises(ClientException) as err:
        call()
    return err.value


def auth_resource(err: ClientException) -> str:
    detail: dict[str, Any] = err.access_denied_detail or {}
    return str(json.loads(base64.b64decode(detail["EncodedDiagnosticMessage"]))["AuthResource"])


def test_a_user_reads_its_own_policies(ram_groups_sdk: SdkFactory) -> None:
    ram = ram_groups_sdk.ram(key=READER)
    body = ram.list_policies_for_user(ram_models.ListPoliciesForUserRequest(user_name="reader"))
    [policy] = body.body.policies.policy
    assert (policy.policy_name, policy.policy_type) == ("AliyunSTSAssumeRoleAccess", "System")
    assert (policy.default_version, policy.description) == ("v1", "Call STS AssumeRole.")
    assert ISO.match(policy.attach_date)


def test_a_user_reads_its_groups_and_their_policies(ram_groups_sdk: SdkFactory) -> None:
    ram = ram_groups_sdk.ram(key=READER)
    groups = ram.list_groups_for_user(
        ram_models.ListGroupsForUserRequest(user_name="reader")
    ).body.groups.group
    assert [(g.group_name, g.comments) for g in groups] == [
        ("ram-readers", "read RAM"),
        ("vpc-viewers", ""),
    ]
    assert groups[0].group_id == group_id(APP, "ram-readers")
    assert re.match(r"^g-[0-9A-Za-z]{16}$", groups[0].group_id)
    assert ISO.match(groups[0].join_date)

    policies = {}
    for group in groups:
        request = ram_models.ListPoliciesForGroupRequest(group_name=group.group_name)
        listed = ram.list_policies_for_group(request).body.policies.policy
        policies[group.group_name] = [(p.policy_name, p.policy_type) for p in listed]
        assert all(p.default_version == "v1" and ISO.match(p.attach_date) for p in listed)
    assert policies == {
        "ram-readers": [("ReadOwnRam", "Custom")],
        "vpc-viewers": [("ListVpcs", "Custom"), ("AliyunSTSAssumeRoleAccess", "System")],
    }
    described = ram.list_policies_for_group(
        ram_models.ListPoliciesForGroupRequest(group_name="ram-readers")
    ).body.policies.policy[0]
    assert described.description == "read one's own RAM policies and groups"


def test_without_the_permission_the_reads_are_refused(ram_groups_sdk: SdkFactory) -> None:
    """`loner` has no group granting the reads; `reader` may read only its own user."""
    loner = ram_groups_sdk.ram(key=LONER)
    err = refused(
        lambda: loner.list_policies_for_user(
            ram_models.ListPoliciesForUserRequest(user_name="loner")
        )
    )
    assert (err.code, err.status_code) == ("NoPermission", 403)
    detail = err.access_denied_detail or {}
    assert detail["AuthAction"] == "ram:ListPoliciesForUser"
    assert detail["AuthPrincipalType"] == "SubUser"
    assert detail["AuthPrincipalDisplayName"] == "loner"
    assert detail["NoPermissionType"] == "ImplicitDeny"
    assert auth_resource(err) == f"acs:ram:*:{APP}:user/loner"

    groups = refused(
        lambda: loner.list_groups_for_user(ram_models.ListGroupsForUserRequest(user_name="loner"))
    )
    assert (groups.access_denied_detail or {})["AuthAction"] == "ram:ListGroupsForUser"
    group = refused(
        lambda: loner.list_policies_for_group(
            ram_models.ListPoliciesForGroupRequest(group_name="ram-readers")
        )
    )
    assert auth_resource(group) == f"acs:ram:*:{APP}:group/ram-readers"

    other = refused(
        lambda: ram_groups_sdk.ram(key=READER).list_policies_for_user(
            ram_models.ListPoliciesForUserRequest(user_name="loner")
        )
    )
    assert other.code == "NoPermission"
    assert auth_resource(other) == f"acs:ram:*:{APP}:user/loner"


@pytest.mark.parametrize(
    ("read", "code"),
    [
        (
            lambda ram: ram.list_policies_for_user(
                ram_models.ListPoliciesForUserRequest(user_name="nobody")
            ),
            ("EntityNotExist.User", "The user does not exist."),
        ),
        (
            lambda ram: ram.list_groups_for_user(
                ram_models.ListGroupsForUserRequest(user_name="nobody")
            ),
            ("EntityNotExist.User", "The user does not exist."),
        ),
        (
            lambda ram: ram.list_policies_for_group(
                ram_models.ListPoliciesForGroupRequest(group_name="nobody")
            ),
            ("EntityNotExist.Group", "The group does not exist."),
        ),
    ],
    ids=["policies-for-user", "groups-for-user", "policies-for-group"],
)
def test_unknown_users_and_groups(
    ram_groups_sdk: SdkFactory, read: Callable[[Any], Any], code: tuple[str, str]
) -> None:
    err = refused(lambda: read(ram_groups_sdk.ram("app")))
    assert (err.code, err.status_code) == (code[0], 404)
    assert code[1] in str(err.message)


def test_names_are_matched_ignoring_case(ram_groups_sdk: SdkFactory) -> None:
    ram = ram_groups_sdk.ram("app")
    body = ram.list_policies_for_group(
        ram_models.ListPoliciesForGroupRequest(group_name="RAM-Readers")
    ).body
    assert [p.policy_name for p in body.policies.policy] == ["ReadOwnRam"]
    groups = ram.list_groups_for_user(ram_models.ListGroupsForUserRequest(user_name="READER"))
    assert len(groups.body.groups.group) == 2


def test_a_groups_policy_grants_what_the_users_own_do_not(ram_groups_sdk: SdkFactory) -> None:
    request = vpc_models.DescribeVpcsRequest(region_id="cn-hangzhou")
    listed = ram_groups_sdk.vpc(key=READER).describe_vpcs(request).body
    assert [v.vpc_id for v in listed.vpcs.vpc] == ["vpc-app"]
    err = refused(lambda: ram_groups_sdk.vpc(key=LONER).describe_vpcs(request))
    assert err.code == "Forbidden.RAM"
    assert (err.access_denied_detail or {})["AuthAction"] == "vpc:DescribeVpcs"


def test_a_policy_attached_to_a_group_is_counted_and_cannot_be_deleted(
    ram_groups_sdk: SdkFactory,
) -> None:
    ram = ram_groups_sdk.ram("app")
    entities = ram.list_entities_for_policy(
        ram_models.ListEntitiesForPolicyRequest(policy_type="Custom", policy_name="ListVpcs")
    ).body
    assert [g.group_name for g in entities.groups.group] == ["vpc-viewers"]
    assert ISO.match(entities.groups.group[0].attach_date)
    got = ram.get_policy(ram_models.GetPolicyRequest(policy_type="Custom", policy_name="ListVpcs"))
    assert got.body.policy.attachment_count == 1
    system = ram.get_policy(
        ram_models.GetPolicyRequest(policy_type="System", policy_name="AliyunSTSAssumeRoleAccess")
    )
    assert system.body.policy.attachment_count == 3  # two users, one group
    err = refused(lambda: ram.delete_policy(ram_models.DeletePolicyRequest(policy_name="ListVpcs")))
    assert (err.code, err.status_code) == ("DeleteConflict.Policy.Group", 409)


def test_get_repo_tag_is_authorized_as_list_repository_tag(ram_groups_sdk: SdkFactory) -> None:
    """ACR's GetRepoTag page names cr:ListRepositoryTag, not cr:GetRepositoryTag."""
    root = ram_groups_sdk.cr("registry")
    repo = root.get_repository(
        cr_models.GetRepositoryRequest(
            instance_id="cri-demo", repo_namespace_name="shop", repo_name="web"
        )
    ).body.repo_id
    request = cr_models.GetRepoTagRequest(instance_id="cri-demo", repo_id=repo, tag="1.0")
    tag = ram_groups_sdk.cr(key=TAGGER).get_repo_tag(request).body
    assert (tag.tag, tag.digest) == ("1.0", "sha256:aaaa")
    err = refused(lambda: ram_groups_sdk.cr(key=OLD_TAGGER).get_repo_tag(request))
    assert (err.code, err.status_code) == ("NoPrivilege", 403)
    assert (err.access_denied_detail or {})["AuthAction"] == "cr:ListRepositoryTag"
    assert auth_resource(err) == f"acs:cr:cn-hangzhou:{REGISTRY}:repository/cri-demo/shop/web"
