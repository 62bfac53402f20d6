"""RAM through the official SDK: every action's happy path, every documented error, the limits.

Reading results as SDK model attributes proves the responses deserialize the way real clients
read them; comparing `/_sandbox/state` before and after each refused call proves a failed write
leaves no trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_ram20150501 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.services import ram as ram_service
from sandbox.store import Store
from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import World
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.policies import permission, trust
from tests.support.ram_setup import make_role

OWNER = UIDS["registry"]
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
OPEN_TRUST = trust(ram=[f"acs:ram::{UIDS['app']}:root"])
PULL = permission("cr:PullRepository", "cr:GetRepository")

MESSAGES = {
    "InvalidParameter.RoleName.InvalidChars": 'The parameter - "RoleName" contains invalid chars.',
    "InvalidParameter.RoleName.Length": 'The parameter - "RoleName" beyond the length limit.',
    "InvalidParameter.AssumeRolePolicyDocument.Length": (
        'The parameter - "AssumeRolePolicyDocument" beyond the length limit.'
    ),
    "InvalidParameter.NewAssumeRolePolicyDocument.Length": (
        'The parameter - "NewAssumeRolePolicyDocument" beyond the length limit.'
    ),
    "EntityAlreadyExists.Role": "The role does already EXIST.",
    "EntityNotExist.Role": "The role does not exist.",
    "DeleteConflict.Role.Policy": (
        "The role CAN NOT has any attached policy while deleting the role."
    ),
    "InvalidParameter.PolicyType": 'The parameter - "PolicyType" is incorrect.',
    "InvalidParameter.PolicyName.InvalidChars": (
        'The parameter - "PolicyNam" contains invalid chars.'
    ),
    "InvalidParameter.PolicyName.Length": 'The parameter - "PolicyName" beyond the length limit.',
    "InvalidParameter.PolicyDocument.Length": (
        'The parameter - "PolicyName" beyond the length limit.'
    ),
    "InvalidParameter.Description.Length": (
        'The parameter - "Description" beyond the length limit.'
    ),
    "InvalidParameter.VersionId.Format": (
        'The format of the parameter - "VersionId" is incorrect.'
    ),
    "EntityAlreadyExists.Policy": "The group does already EXIST.",
    "EntityNotExist.Policy": "The policy does not exist.",
    "EntityNotExist.Policy.Version": "The policy version does not exist.",
    "LimitExceeded.Policy.Version": "The count of policy version beyond the current limits.",
    "DeleteConflict.Policy.Version": (
        "The policy CAN NOT has any version except the defaul version."
    ),
    "DeleteConflict.Policy.Version.Default": (
        "The default policy version CAN NOT been deleted directly."
    ),
    "LimitExceeded.Role.Policy": (
        "The count of policies attached to the role beyond the current limits."
    ),
}
"""Verbatim messages of reference table 3.3, upstream typos included."""


@pytest.fixture
def ram(sdk: SdkFactory) -> Any:
    """The registry account's RAM client (ACS3 signature) on a freshly reset sandbox."""
    return sdk.ram("registry")


def refused(
    admin: SandboxAdmin,
    call: Callable[[], object],
    status: int,
    code: str,
    before: dict[str, Any] | None = None,
) -> Any:
    """Run a call that must fail with `status`/`code`; it must leave the sandbox state untouched
    (`before`, when the caller already holds it)."""
    if before is None:
        before = admin.state()
    with pytest.raises(ClientException) as info:
        call()
    error = info.value
    assert (error.status_code, error.code) == (status, code), error.message
    if code in MESSAGES:
        assert error.data["Message"] == MESSAGES[code]
    assert admin.state() == before
    return error


def create_policy(ram: Any, name: str, *documents: str) -> None:
    """A custom policy whose versions are `documents` (v1 first), v1 staying the default."""
    ram.create_policy(m.CreatePolicyRequest(policy_name=name, policy_document=documents[0]))
    for text in documents[1:]:
        ram.create_policy_version(
            m.CreatePolicyVersionRequest(policy_name=name, policy_document=text)
        )


def versions(ram: Any, name: str) -> dict[str, bool]:
    """A custom policy's version ids -> is default."""
    body = ram.list_policy_versions(
        m.ListPolicyVersionsRequest(policy_name=name, policy_type="Custom")
    ).body
    return {v.version_id: v.is_default_version for v in body.policy_versions.policy_version}


def attached(ram: Any, role: str) -> set[tuple[str, str]]:
    body = ram.list_policies_for_role(m.ListPoliciesForRoleRequest(role_name=role)).body
    return {(p.policy_name, p.policy_type) for p in body.policies.policy}


def attach(ram: Any, role: str, policy: str, policy_type: str = "Custom") -> None:
    ram.attach_policy_to_role(
        m.AttachPolicyToRoleRequest(policy_type=policy_type, policy_name=policy, role_name=role)
    )


# -- roles -----------------------------------------------------------------------------------------


@pytest.mark.contract_breaches
def test_role_lifecycle(ram: Any, admin: SandboxAdmin) -> None:
    """Create, read (case-insensitively), update and delete a role; every field round-trips.

    `AllowConsoleLogin` / `NewAllowConsoleLogin` are in the SDK's models but not in RAM's API
    metadata (sandbox/api_meta), so the gateway ignores them: the role keeps the default."""
    created = ram.create_role(
        m.CreateRoleRequest(
            role_name="Deployer",
            assume_role_policy_document=OPEN_TRUST,
            description="deploys images",
            max_session_duration=7200,
            allow_console_login=True,
        )
    ).body
    role = created.role
    assert role.arn == f"acs:ram::{OWNER}:role/Deployer"
    assert (role.role_name, role.description, role.max_session_duration) == (
        "Deployer",
        "deploys images",
        7200,
    )
    assert role.assume_role_policy_document == OPEN_TRUST
    assert role.allow_console_login is False
    assert admin.requests()[-1]["ignored"] == ["AllowConsoleLogin"]
    assert role.role_id.isdigit() and ISO_TIME.match(role.create_date)
    assert created.request_id

    got = ram.get_role(m.GetRoleRequest(role_name="deployer")).body.role
    assert (got.role_id, got.arn, got.role_name) == (role.role_id, role.arn, "Deployer")
    assert got.role_principal_name == f"Deployer@role.{OWNER}.onaliyunservice.com"
    assert got.is_service_linked_role is False
    assert ISO_TIME.match(got.update_date)

    new_trust = trust(service=[f"{UIDS['app']}@sae.aliyuncs.com"])
    updated = ram.update_role(
        m.UpdateRoleRequest(
            role_name="DEPLOYER",
            new_assume_role_policy_document=new_trust,
            new_description="pulls images",
            new_max_session_duration=43200,
            new_allow_console_login=True,
        )
    ).body.role
    assert (updated.description, updated.max_session_duration) == ("pulls images", 43200)
    assert updated.allow_console_login is False
    assert admin.requests()[-1]["ignored"] == ["NewAllowConsoleLogin"]
    got = ram.get_role(m.GetRoleRequest(role_name="Deployer")).body.role
    assert got.assume_role_policy_document == new_trust
    assert (got.description, got.max_session_duration) == ("pulls images", 43200)

    partial = ram.update_role(m.UpdateRoleRequest(role_name="Deployer", new_description="x"))
    assert partial.body.role.assume_role_policy_document == new_trust
    assert partial.body.role.max_session_duration == 43200

    ram.delete_role(m.DeleteRoleRequest(role_name="deployer"))
    with pytest.raises(ClientException) as gone:
        ram.get_role(m.GetRoleRequest(role_name="Deployer"))
    assert (gone.value.status_code, gone.value.code) == (404, "EntityNotExist.Role")


@pytest.mark.parametrize("name", ["a", "x" * 64, "my.role-1", "ROLE.2"])
def test_role_name_edges_accepted(ram: Any, name: str) -> None:
    """The documented alphabet (letters, digits, `.`, `-`) and 64 characters are allowed."""
    body = ram.create_role(
        m.CreateRoleRequest(role_name=name, assume_role_policy_document=OPEN_TRUST)
    ).body
    assert body.role.arn == f"acs:ram::{OWNER}:role/{name}"
    assert body.role.max_session_duration == 3600


@pytest.mark.parametrize("seconds", [3600, 43200])
def test_max_session_duration_bounds_accepted(ram: Any, seconds: int) -> None:
    """Both ends of 3600..43200 are inclusive (the error table checks just outside them)."""
    body = ram.create_role(
        m.CreateRoleRequest(
            role_name="bounded",
            assume_role_policy_document=OPEN_TRUST,
            max_session_duration=seconds,
        )
    ).body
    assert body.role.max_session_duration == seconds


def test_list_roles_pages_with_marker(ram: Any) -> None:
    """MaxItems/Marker paging visits every role once, in creation order, then stops."""
    names = [f"role-{i}" for i in range(5)]
    for name in names:
        ram.create_role(m.CreateRoleRequest(role_name=name, assume_role_policy_document=OPEN_TRUST))
    everything = ram.list_roles(m.ListRolesRequest()).body
    assert [r.role_name for r in everything.roles.role] == names
    assert everything.is_truncated is False and everything.marker is None
    first = everything.roles.role[0]
    assert first.arn == f"acs:ram::{OWNER}:role/role-0" and first.max_session_duration == 3600

    seen: list[str] = []
    pages: list[int] = []
    marker = None
    while True:
        page = ram.list_roles(m.ListRolesRequest(max_items=2, marker=marker)).body
        seen += [r.role_name for r in page.roles.role]
        pages.append(len(page.roles.role))
        if not page.is_truncated:
            assert page.marker is None
            break
        marker = page.marker
        assert marker
    assert seen == names
    assert pages == [2, 2, 1]


# -- policies --------------------------------------------------------------------------------------


def test_policy_lifecycle_and_versions(ram: Any) -> None:
    """Create a policy, add versions with and without SetAsDefault, switch, delete versions."""
    created = ram.create_policy(
        m.CreatePolicyRequest(policy_name="Pull-Images", policy_document=PULL, description="pull")
    ).body.policy
    assert (created.policy_name, created.policy_type, created.default_version) == (
        "Pull-Images",
        "Custom",
        "v1",
    )
    assert created.description == "pull" and ISO_TIME.match(created.create_date)

    got = ram.get_policy(m.GetPolicyRequest(policy_name="pull-images", policy_type="Custom")).body
    assert (got.policy.policy_name, got.policy.default_version) == ("Pull-Images", "v1")
    assert got.policy.attachment_count == 0 and got.policy.policy_document == PULL
    assert got.default_policy_version.version_id == "v1"
    assert got.default_policy_version.is_default_version is True
    assert got.default_policy_version.policy_document == PULL

    v2_doc = permission("cr:*")
    v2 = ram.create_policy_version(
        m.CreatePolicyVersionRequest(
            policy_name="Pull-Images",
            policy_document=v2_doc,
            set_as_default=False,
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",  # no-op below 5
        )
    ).body.policy_version
    assert (v2.version_id, v2.is_default_version, v2.policy_document) == ("v2", False, v2_doc)
    v3_doc = permission("cr:Get*")
    v3 = ram.create_policy_version(
        m.CreatePolicyVersionRequest(
            policy_name="Pull-Images", policy_document=v3_doc, set_as_default=True
        )
    ).body.policy_version
    assert (v3.version_id, v3.is_default_version) == ("v3", True)
    assert ISO_TIME.match(v3.create_date)
    assert versions(ram, "Pull-Images") == {"v1": False, "v2": False, "v3": True}
    listed = ram.list_policy_versions(
        m.ListPolicyVersionsRequest(policy_name="Pull-Images", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert {v.version_id: v.policy_document for v in listed} == {
        "v1": PULL,
        "v2": v2_doc,
        "v3": v3_doc,
    }

    one = ram.get_policy_version(
        m.GetPolicyVersionRequest(policy_name="Pull-Images", policy_type="Custom", version_id="v2")
    ).body.policy_version
    assert (one.version_id, one.is_default_version, one.policy_document) == ("v2", False, v2_doc)
    got = ram.get_policy(m.GetPolicyRequest(policy_name="Pull-Images", policy_type="Custom")).body
    assert got.policy.default_version == "v3" and got.policy.policy_document == v3_doc

    ram.set_default_policy_version(
        m.SetDefaultPolicyVersionRequest(policy_name="Pull-Images", version_id="v1")
    )
    assert versions(ram, "Pull-Images") == {"v1": True, "v2": False, "v3": False}
    got = ram.get_policy(m.GetPolicyRequest(policy_name="Pull-Images", policy_type="Custom")).body
    assert got.default_policy_version.version_id == "v1"
    assert got.default_policy_version.policy_document == PULL

    ram.delete_policy_version(
        m.DeletePolicyVersionRequest(policy_name="Pull-Images", version_id="v3")
    )
    assert versions(ram, "Pull-Images") == {"v1": True, "v2": False}
    ram.delete_policy_version(
        m.DeletePolicyVersionRequest(policy_name="Pull-Images", version_id="v2")
    )
    ram.delete_policy(m.DeletePolicyRequest(policy_name="pull-images"))
    with pytest.raises(ClientException) as gone:
        ram.get_policy(m.GetPolicyRequest(policy_name="Pull-Images", policy_type="Custom"))
    assert (gone.value.status_code, gone.value.code) == (404, "EntityNotExist.Policy")


def test_system_policies_read_like_custom_ones(ram: Any) -> None:
    """System policies such as AdministratorAccess answer the read calls like custom ones."""
    got = ram.get_policy(
        m.GetPolicyRequest(policy_name="AdministratorAccess", policy_type="System")
    ).body
    assert (got.policy.policy_name, got.policy.policy_type) == ("AdministratorAccess", "System")
    assert got.policy.default_version == "v1" and got.policy.description
    document = json.loads(got.default_policy_version.policy_document)
    assert document["Statement"][0]["Action"] == ["*"]
    assert got.default_policy_version.is_default_version is True

    version = ram.get_policy_version(
        m.GetPolicyVersionRequest(
            policy_name="AdministratorAccess", policy_type="System", version_id="v1"
        )
    ).body.policy_version
    assert version.policy_document == got.default_policy_version.policy_document
    listed = ram.list_policy_versions(
        m.ListPolicyVersionsRequest(policy_name="AdministratorAccess", policy_type="System")
    ).body.policy_versions.policy_version
    assert len(listed) == 1 and listed[0].version_id == "v1" and listed[0].is_default_version


def test_five_versions_then_rotation_drops_the_oldest_non_default(
    ram: Any, admin: SandboxAdmin
) -> None:
    """At five versions a sixth is refused (and leaves nothing behind) unless rotation is asked
    for, which then deletes the oldest version that is not the default one."""
    docs = [permission(f"cr:Action{i}") for i in range(1, 6)]
    create_policy(ram, "rotating", *docs)
    assert versions(ram, "rotating") == {
        "v1": True,
        "v2": False,
        "v3": False,
        "v4": False,
        "v5": False,
    }

    sixth = m.CreatePolicyVersionRequest(policy_name="rotating", policy_document=permission("cr:X"))
    refused(admin, lambda: ram.create_policy_version(sixth), 409, "LimitExceeded.Policy.Version")
    explicit = m.CreatePolicyVersionRequest(
        policy_name="rotating", policy_document=permission("cr:X"), rotate_strategy="None"
    )
    refused(admin, lambda: ram.create_policy_version(explicit), 409, "LimitExceeded.Policy.Version")

    rotate = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
    made = ram.create_policy_version(
        m.CreatePolicyVersionRequest(
            policy_name="rotating", policy_document=permission("cr:X"), rotate_strategy=rotate
        )
    ).body.policy_version
    assert made.version_id == "v6"
    assert versions(ram, "rotating") == {
        "v1": True,
        "v3": False,
        "v4": False,
        "v5": False,
        "v6": False,
    }

    ram.set_default_policy_version(
        m.SetDefaultPolicyVersionRequest(policy_name="rotating", version_id="v4")
    )
    ram.create_policy_version(
        m.CreatePolicyVersionRequest(
            policy_name="rotating",
            policy_document=permission("cr:Y"),
            rotate_strategy=rotate,
            set_as_default=True,
        )
    )
    assert versions(ram, "rotating") == {
        "v3": False,
        "v4": False,
        "v5": False,
        "v6": False,
        "v7": True,
    }


def test_delete_policy_with_versions_needs_cascade(ram: Any, admin: SandboxAdmin) -> None:
    """Non-default versions block DeletePolicy unless CascadingDelete removes them too."""
    create_policy(ram, "layered", PULL, permission("cr:*"))
    plain = m.DeletePolicyRequest(policy_name="layered", cascading_delete=False)
    refused(admin, lambda: ram.delete_policy(plain), 409, "DeleteConflict.Policy.Version")
    ram.delete_policy(m.DeletePolicyRequest(policy_name="layered", cascading_delete=True))
    with pytest.raises(ClientException) as gone:
        versions(ram, "layered")
    assert gone.value.code == "EntityNotExist.Policy"


# -- attachments -----------------------------------------------------------------------------------


def test_attachments_lifecycle(sdk: SdkFactory, ram: Any, admin: SandboxAdmin) -> None:
    """Attach custom and system policies, list both ways, and the conflicts attachments cause."""
    make_role(sdk, "puller", OPEN_TRUST)
    create_policy(ram, "pull-images", PULL)
    attach(ram, "PULLER", "Pull-Images")
    attach(ram, "puller", "AliyunContainerRegistryReadOnlyAccess", "System")

    policies = ram.list_policies_for_role(
        m.ListPoliciesForRoleRequest(role_name="puller")
    ).body.policies.policy
    by_name = {p.policy_name: p for p in policies}
    assert set(by_name) == {"pull-images", "AliyunContainerRegistryReadOnlyAccess"}
    custom = by_name["pull-images"]
    assert (custom.policy_type, custom.default_version) == ("Custom", "v1")
    assert ISO_TIME.match(custom.attach_date)
    system = by_name["AliyunContainerRegistryReadOnlyAccess"]
    assert (system.policy_type, system.default_version) == ("System", "v1")
    assert system.description

    for name, policy_type in (
        ("pull-images", "Custom"),
        ("AliyunContainerRegistryReadOnlyAccess", "System"),
    ):
        entities = ram.list_entities_for_policy(
            m.ListEntitiesForPolicyRequest(policy_name=name, policy_type=policy_type)
        ).body
        (role,) = entities.roles.role
        assert (role.role_name, role.arn) == ("puller", f"acs:ram::{OWNER}:role/puller")
        assert role.role_id.isdigit() and ISO_TIME.match(role.attach_date)
        assert entities.users.user == [] and entities.groups.group == []
    got = ram.get_policy(m.GetPolicyRequest(policy_name="pull-images", policy_type="Custom")).body
    assert got.policy.attachment_count == 1

    again = m.AttachPolicyToRoleRequest(
        policy_type="Custom", policy_name="PULL-IMAGES", role_name="puller"
    )
    refused(admin, lambda: ram.attach_policy_to_role(again), 409, "EntityAlreadyExists.Role.Policy")
    delete_role = m.DeleteRoleRequest(role_name="puller")
    refused(admin, lambda: ram.delete_role(delete_role), 409, "DeleteConflict.Role.Policy")
    delete_policy = m.DeletePolicyRequest(policy_name="pull-images", cascading_delete=True)
    refused(admin, lambda: ram.delete_policy(delete_policy), 409, "DeleteConflict.Policy.Role")

    for name, policy_type in (
        ("pull-images", "Custom"),
        ("AliyunContainerRegistryReadOnlyAccess", "System"),
    ):
        ram.detach_policy_from_role(
            m.DetachPolicyFromRoleRequest(
                policy_type=policy_type, policy_name=name, role_name="puller"
            )
        )
    assert attached(ram, "puller") == set()
    entities = ram.list_entities_for_policy(
        m.ListEntitiesForPolicyRequest(policy_name="pull-images", policy_type="Custom")
    ).body
    assert entities.roles.role == []
    detach = m.DetachPolicyFromRoleRequest(
        policy_type="Custom", policy_name="pull-images", role_name="puller"
    )
    refused(admin, lambda: ram.detach_policy_from_role(detach), 404, "EntityNotExist.Role.Policy")
    ram.delete_policy(m.DeletePolicyRequest(policy_name="pull-images"))
    ram.delete_role(m.DeleteRoleRequest(role_name="puller"))


def test_custom_policies_per_role_limit(sdk: SdkFactory, ram: Any, admin: SandboxAdmin) -> None:
    """Five custom policies fit on a role, a sixth is refused; system ones count separately."""
    make_role(sdk, "busy", OPEN_TRUST, "AliyunRAMReadOnlyAccess")
    for i in range(6):
        create_policy(ram, f"p{i}", PULL)
    for i in range(5):
        attach(ram, "busy", f"p{i}")
    sixth = m.AttachPolicyToRoleRequest(policy_type="Custom", policy_name="p5", role_name="busy")
    refused(admin, lambda: ram.attach_policy_to_role(sixth), 409, "LimitExceeded.Role.Policy")
    attach(ram, "busy", "AliyunSTSAssumeRoleAccess", "System")
    assert len(attached(ram, "busy")) == 7


# -- documented errors -----------------------------------------------------------------------------


@dataclass
class Base:
    """Role `base` and policy `base` (v1 default, v2 not): the targets of the error table."""

    ram: Any
    admin: SandboxAdmin
    state: dict[str, Any]


@pytest.fixture(scope="module")
def _base(sandbox_process: SandboxProcess) -> Iterator[Base]:
    sdk = SdkFactory(sandbox_process.endpoint)
    admin = SandboxAdmin(sandbox_process.url)
    yield Base(sdk.ram("registry"), admin, {})
    admin.close()


@pytest.fixture
def base(sandbox_process: SandboxProcess, _base: Base) -> Base:
    """The error table's state, set up once: every case proves it changes nothing, so the next
    case can reuse it. Set up again whenever anything else (a reset) changed it."""
    current = _base.admin.state()
    if current != _base.state:
        _base.admin.reset()
        make_role(SdkFactory(sandbox_process.endpoint), "base", OPEN_TRUST)
        create_policy(_base.ram, "base", PULL, permission("cr:*"))
        _base.state = _base.admin.state()
    return _base


def _doc(**fields: Any) -> str:
    return json.dumps({"Version": "1", **fields})


_TRUST_STATEMENT = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": ["*"]}}
_PERMISSION_STATEMENT = {"Effect": "Allow", "Action": "cr:*", "Resource": "*"}
MALFORMED_TRUST = {
    "bad-json": '{"Version": "1", "Statement": [',
    "wrong-version": json.dumps({"Version": "2012-10-17", "Statement": [_TRUST_STATEMENT]}),
    "no-principal": _doc(Statement=[{"Effect": "Allow", "Action": "sts:AssumeRole"}]),
    "bad-effect": _doc(Statement=[{**_TRUST_STATEMENT, "Effect": "Maybe"}]),
    "resource-in-trust": _doc(Statement=[{**_TRUST_STATEMENT, "Resource": "*"}]),
}
MALFORMED_PERMISSION = {
    "bad-json": "not json",
    "wrong-version": json.dumps({"Version": "2", "Statement": [_PERMISSION_STATEMENT]}),
    "principal-in-permission": _doc(
        Statement=[{**_PERMISSION_STATEMENT, "Principal": {"RAM": ["*"]}}]
    ),
    "bad-effect": _doc(Statement=[{**_PERMISSION_STATEMENT, "Effect": "allow"}]),
    "no-resource": _doc(Statement=[{"Effect": "Allow", "Action": "cr:*"}]),
}
LONG_TRUST = trust(ram=[str(10**15 + i) for i in range(220)])
LONG_PERMISSION = permission("cr:*", resource="acs:cr:*:*:repository/" + "x" * 6100)
assert 4096 < len(LONG_TRUST) < 6144 and len(LONG_PERMISSION) > 6144

Case = tuple[str, Any, int, str]
"""SDK method, request, HTTP status, error code."""


def _malformed_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for key, text in MALFORMED_TRUST.items():
        cases[f"create-role-{key}"] = (
            "create_role",
            m.CreateRoleRequest(role_name="new", assume_role_policy_document=text),
            400,
            "MalformedPolicyDocument",
        )
        cases[f"update-role-{key}"] = (
            "update_role",
            m.UpdateRoleRequest(role_name="base", new_assume_role_policy_document=text),
            400,
            "MalformedPolicyDocument",
        )
    for key, text in MALFORMED_PERMISSION.items():
        cases[f"create-policy-{key}"] = (
            "create_policy",
            m.CreatePolicyRequest(policy_name="new", policy_document=text),
            400,
            "MalformedPolicyDocument",
        )
        cases[f"create-policy-version-{key}"] = (
            "create_policy_version",
            m.CreatePolicyVersionRequest(policy_name="base", policy_document=text),
            400,
            "MalformedPolicyDocument",
        )
    return cases


def _role_name_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for bad, code in (("x" * 65, "Length"), ("bad name", "InvalidChars"), ("r_1", "InvalidChars")):
        requests = {
            "create": (
                "create_role",
                m.CreateRoleRequest(role_name=bad, assume_role_policy_document=OPEN_TRUST),
            ),
            "get": ("get_role", m.GetRoleRequest(role_name=bad)),
            "update": ("update_role", m.UpdateRoleRequest(role_name=bad, new_description="d")),
            "delete": ("delete_role", m.DeleteRoleRequest(role_name=bad)),
        }
        for action, (method, request) in requests.items():
            label = "long" if code == "Length" else bad.replace(" ", "-")
            cases[f"{action}-role-name-{label}"] = (
                method,
                request,
                400,
                f"InvalidParameter.RoleName.{code}",
            )
    return cases


def _missing_role_cases() -> dict[str, Case]:
    return {
        f"{method}-missing-role": (method, request, 404, "EntityNotExist.Role")
        for method, request in (
            ("get_role", m.GetRoleRequest(role_name="ghost")),
            ("update_role", m.UpdateRoleRequest(role_name="ghost", new_description="d")),
            ("delete_role", m.DeleteRoleRequest(role_name="ghost")),
            (
                "attach_policy_to_role",
                m.AttachPolicyToRoleRequest(
                    policy_type="Custom", policy_name="base", role_name="ghost"
                ),
            ),
            (
                "detach_policy_from_role",
                m.DetachPolicyFromRoleRequest(
                    policy_type="Custom", policy_name="base", role_name="ghost"
                ),
            ),
            ("list_policies_for_role", m.ListPoliciesForRoleRequest(role_name="ghost")),
        )
    }


def _policy_type_cases() -> dict[str, Case]:
    return {
        f"{method}-policy-type": (method, request, 400, "InvalidParameter.PolicyType")
        for method, request in (
            ("get_policy", m.GetPolicyRequest(policy_name="base", policy_type="custom")),
            (
                "get_policy_version",
                m.GetPolicyVersionRequest(
                    policy_name="base", policy_type="Managed", version_id="v1"
                ),
            ),
            (
                "list_policy_versions",
                m.ListPolicyVersionsRequest(policy_name="base", policy_type="Inline"),
            ),
            (
                "attach_policy_to_role",
                m.AttachPolicyToRoleRequest(
                    policy_type="Both", policy_name="base", role_name="base"
                ),
            ),
            (
                "detach_policy_from_role",
                m.DetachPolicyFromRoleRequest(
                    policy_type="X", policy_name="base", role_name="base"
                ),
            ),
            (
                "list_entities_for_policy",
                m.ListEntitiesForPolicyRequest(policy_name="base", policy_type="SYSTEM"),
            ),
        )
    }


def _missing_policy_cases() -> dict[str, Case]:
    return {
        f"{label}-missing-policy": (method, request, 404, "EntityNotExist.Policy")
        for label, method, request in (
            (
                "get-custom",
                "get_policy",
                m.GetPolicyRequest(policy_name="ghost", policy_type="Custom"),
            ),
            (
                "get-system",
                "get_policy",
                m.GetPolicyRequest(policy_name="NoSuchAccess", policy_type="System"),
            ),
            (
                "get-version",
                "get_policy_version",
                m.GetPolicyVersionRequest(
                    policy_name="ghost", policy_type="Custom", version_id="v1"
                ),
            ),
            (
                "create-version",
                "create_policy_version",
                m.CreatePolicyVersionRequest(policy_name="ghost", policy_document=PULL),
            ),
            (
                "list-versions",
                "list_policy_versions",
                m.ListPolicyVersionsRequest(policy_name="ghost", policy_type="Custom"),
            ),
            (
                "list-system-versions",
                "list_policy_versions",
                m.ListPolicyVersionsRequest(policy_name="NoSuchAccess", policy_type="System"),
            ),
            (
                "delete-version",
                "delete_policy_version",
                m.DeletePolicyVersionRequest(policy_name="ghost", version_id="v1"),
            ),
            (
                "set-default",
                "set_default_policy_version",
                m.SetDefaultPolicyVersionRequest(policy_name="ghost", version_id="v1"),
            ),
            (
                "delete",
                "delete_policy",
                m.DeletePolicyRequest(policy_name="ghost", cascading_delete=True),
            ),
            (
                "attach-custom",
                "attach_policy_to_role",
                m.AttachPolicyToRoleRequest(
                    policy_type="Custom", policy_name="ghost", role_name="base"
                ),
            ),
            (
                "attach-system",
                "attach_policy_to_role",
                m.AttachPolicyToRoleRequest(
                    policy_type="System", policy_name="NoSuchAccess", role_name="base"
                ),
            ),
            (
                "detach",
                "detach_policy_from_role",
                m.DetachPolicyFromRoleRequest(
                    policy_type="Custom", policy_name="ghost", role_name="base"
                ),
            ),
            (
                "entities",
                "list_entities_for_policy",
                m.ListEntitiesForPolicyRequest(policy_name="ghost", policy_type="Custom"),
            ),
        )
    }


def _version_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for version, status, code in (
        ("1", 400, "InvalidParameter.VersionId.Format"),
        ("v0", 400, "InvalidParameter.VersionId.Format"),
        ("V1", 400, "InvalidParameter.VersionId.Format"),
        ("v1a", 400, "InvalidParameter.VersionId.Format"),
        ("v9", 404, "EntityNotExist.Policy.Version"),
    ):
        for method, request in (
            (
                "get_policy_version",
                m.GetPolicyVersionRequest(
                    policy_name="base", policy_type="Custom", version_id=version
                ),
            ),
            (
                "delete_policy_version",
                m.DeletePolicyVersionRequest(policy_name="base", version_id=version),
            ),
            (
                "set_default_policy_version",
                m.SetDefaultPolicyVersionRequest(policy_name="base", version_id=version),
            ),
        ):
            cases[f"{method}-{version}"] = (method, request, status, code)
    cases["get-system-version-v2"] = (
        "get_policy_version",
        m.GetPolicyVersionRequest(
            policy_name="AdministratorAccess", policy_type="System", version_id="v2"
        ),
        404,
        "EntityNotExist.Policy.Version",
    )
    return cases


ERRORS: dict[str, Case] = {
    **_malformed_cases(),
    **_role_name_cases(),
    **_missing_role_cases(),
    **_policy_type_cases(),
    **_missing_policy_cases(),
    **_version_cases(),
    "create-role-trust-too-long": (
        "create_role",
        m.CreateRoleRequest(role_name="new", assume_role_policy_document=LONG_TRUST),
        400,
        "InvalidParameter.AssumeRolePolicyDocument.Length",
    ),
    "update-role-trust-too-long": (
        "update_role",
        m.UpdateRoleRequest(role_name="base", new_assume_role_policy_document=LONG_TRUST),
        400,
        "InvalidParameter.NewAssumeRolePolicyDocument.Length",
    ),
    "create-policy-too-long": (
        "create_policy",
        m.CreatePolicyRequest(policy_name="new", policy_document=LONG_PERMISSION),
        400,
        "InvalidParameter.PolicyDocument.Length",
    ),
    "create-policy-version-too-long": (
        "create_policy_version",
        m.CreatePolicyVersionRequest(policy_name="base", policy_document=LONG_PERMISSION),
        400,
        "InvalidParameter.PolicyDocument.Length",
    ),
    "duplicate-role": (
        "create_role",
        m.CreateRoleRequest(role_name="base", assume_role_policy_document=OPEN_TRUST),
        409,
        "EntityAlreadyExists.Role",
    ),
    "duplicate-role-other-case": (
        "create_role",
        m.CreateRoleRequest(role_name="BASE", assume_role_policy_document=OPEN_TRUST),
        409,
        "EntityAlreadyExists.Role",
    ),
    "duplicate-policy-other-case": (
        "create_policy",
        m.CreatePolicyRequest(policy_name="Base", policy_document=PULL),
        409,
        "EntityAlreadyExists.Policy",
    ),
    "policy-name-chars": (
        "create_policy",
        m.CreatePolicyRequest(policy_name="pull.images", policy_document=PULL),
        400,
        "InvalidParameter.PolicyName.InvalidChars",
    ),
    "policy-name-chars-on-get": (
        "get_policy",
        m.GetPolicyRequest(policy_name="pull_images", policy_type="Custom"),
        400,
        "InvalidParameter.PolicyName.InvalidChars",
    ),
    "policy-name-length": (
        "create_policy",
        m.CreatePolicyRequest(policy_name="p" * 129, policy_document=PULL),
        400,
        "InvalidParameter.PolicyName.Length",
    ),
    "policy-description-length": (
        "create_policy",
        m.CreatePolicyRequest(policy_name="new", policy_document=PULL, description="d" * 1025),
        400,
        "InvalidParameter.Description.Length",
    ),
    "delete-default-version": (
        "delete_policy_version",
        m.DeletePolicyVersionRequest(policy_name="base", version_id="v1"),
        409,
        "DeleteConflict.Policy.Version.Default",
    ),
    "delete-policy-with-versions": (
        "delete_policy",
        m.DeletePolicyRequest(policy_name="base"),
        409,
        "DeleteConflict.Policy.Version",
    ),
    "detach-not-attached": (
        "detach_policy_from_role",
        m.DetachPolicyFromRoleRequest(policy_type="Custom", policy_name="base", role_name="base"),
        404,
        "EntityNotExist.Role.Policy",
    ),
    "detach-system-not-attached": (
        "detach_policy_from_role",
        m.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AdministratorAccess", role_name="base"
        ),
        404,
        "EntityNotExist.Role.Policy",
    ),
    "max-session-too-short": (
        "create_role",
        m.CreateRoleRequest(
            role_name="new", assume_role_policy_document=OPEN_TRUST, max_session_duration=3599
        ),
        400,
        "InvalidParameter.MaxSessionDuration",
    ),
    "max-session-too-long": (
        "create_role",
        m.CreateRoleRequest(
            role_name="new", assume_role_policy_document=OPEN_TRUST, max_session_duration=43201
        ),
        400,
        "InvalidParameter.MaxSessionDuration",
    ),
    "update-max-session-too-long-with-valid-description": (
        "update_role",
        m.UpdateRoleRequest(
            role_name="base", new_description="kept?", new_max_session_duration=43201
        ),
        400,
        "InvalidParameter.NewMaxSessionDuration",
    ),
    "rotate-strategy-unknown": (
        "create_policy_version",
        m.CreatePolicyVersionRequest(
            policy_name="base", policy_document=PULL, rotate_strategy="Oldest"
        ),
        400,
        "InvalidParameter",
    ),
    "list-roles-max-items-zero": (
        "list_roles",
        m.ListRolesRequest(max_items=0),
        400,
        "InvalidParameter",
    ),
    "list-roles-marker-garbage": (
        "list_roles",
        m.ListRolesRequest(marker="!!not-a-marker"),
        400,
        "InvalidParameter.Marker",
    ),
    "list-roles-marker-negative": (
        "list_roles",
        m.ListRolesRequest(marker="LTE="),
        400,
        "InvalidParameter.Marker",
    ),
}


@pytest.mark.parametrize(
    ("method", "request_", "status", "code"), ERRORS.values(), ids=ERRORS.keys()
)
def test_documented_errors(base: Base, method: str, request_: Any, status: int, code: str) -> None:
    """Each documented refusal: right HTTP status, code and verbatim message, and no side effect."""
    call = getattr(base.ram, method)
    refused(base.admin, lambda: call(request_), status, code, before=base.state)


def test_multibyte_documents_count_characters_or_bytes_as_documented(
    ram: Any, admin: SandboxAdmin
) -> None:
    """CreatePolicy limits characters, CreatePolicyVersion bytes (reference 3.1): a document of
    ~4,100 characters but ~8,200 bytes is accepted by the first and refused by the second."""
    wide = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cr:*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"acs:tag": "镜" * 4000}},
                }
            ],
        },
        ensure_ascii=False,
    )
    assert len(wide) < 6144 < len(wide.encode())
    ram.create_policy(m.CreatePolicyRequest(policy_name="wide", policy_document=wide))
    got = ram.get_policy(m.GetPolicyRequest(policy_name="wide", policy_type="Custom")).body
    assert got.default_policy_version.policy_document == wide
    request = m.CreatePolicyVersionRequest(policy_name="wide", policy_document=wide)
    refused(
        admin,
        lambda: ram.create_policy_version(request),
        400,
        "InvalidParameter.PolicyDocument.Length",
    )


# -- signatures and the world file -----------------------------------------------------------------


def test_legacy_v2_signature(sdk: SdkFactory) -> None:
    """The RPC v2 (HMAC-SHA1) path signs JSON documents and `=`-padded markers correctly too."""
    legacy = sdk.ram("registry", v2=True)
    for name in ("v2-a", "v2-b"):
        created = legacy.create_role(
            m.CreateRoleRequest(role_name=name, assume_role_policy_document=OPEN_TRUST)
        ).body.role
        assert created.arn == f"acs:ram::{OWNER}:role/{name}"
    page = legacy.list_roles(m.ListRolesRequest(max_items=1)).body
    assert page.is_truncated and "=" in page.marker
    rest = legacy.list_roles(m.ListRolesRequest(max_items=1, marker=page.marker)).body
    assert [r.role_name for r in rest.roles.role] == ["v2-b"]
    legacy.create_policy(m.CreatePolicyRequest(policy_name="legacy", policy_document=PULL))
    attach(legacy, "v2-a", "legacy")
    assert attached(legacy, "v2-a") == {("legacy", "Custom")}
    with pytest.raises(ClientException) as duplicate:
        legacy.create_role(
            m.CreateRoleRequest(role_name="V2-A", assume_role_policy_document=OPEN_TRUST)
        )
    assert (duplicate.value.status_code, duplicate.value.code) == (409, "EntityAlreadyExists.Role")


def _world_data(ram_section: dict[str, Any]) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "name": name,
                "uid": UIDS[name],
                "access_keys": [{"id": KEYS[name][0], "secret": KEYS[name][1]}],
            }
            for name in ("app", "registry")
        ],
        "ram": {"registry": ram_section},
    }


PULLER_TRUST = trust(service=[f"{UIDS['app']}@sae.aliyuncs.com"])
WORLD_RAM: dict[str, list[dict[str, Any]]] = {
    "roles": [
        {
            "name": "SaePuller",
            "trust_policy": PULLER_TRUST,
            "description": "SAE pulls images",
            "max_session_duration": 7200,
            "attached": ["Pull-Images", "AliyunRAMReadOnlyAccess"],
        }
    ],
    "policies": [
        {
            "name": "pull-images",
            "description": "pull from cri-demo",
            "versions": [permission("cr:Get*"), permission("cr:List*")],
            "document": PULL,
        }
    ],
}


def test_world_file_ram_is_seeded(tmp_path: Path) -> None:
    """Roles, attachments and policy versions from the world file exist at start and after reset."""
    world = tmp_path / "world.yaml"
    world.write_text(yaml.safe_dump(_world_data(WORLD_RAM)))
    with SandboxProcess(world=world) as process:
        ram = SdkFactory(process.endpoint).ram("registry")
        admin = SandboxAdmin(process.url)
        try:
            for _ in range(2):
                role = ram.get_role(m.GetRoleRequest(role_name="saepuller")).body.role
                assert role.arn == f"acs:ram::{OWNER}:role/SaePuller"
                assert role.assume_role_policy_document == PULLER_TRUST
                assert (role.description, role.max_session_duration) == ("SAE pulls images", 7200)
                assert attached(ram, "SaePuller") == {
                    ("pull-images", "Custom"),
                    ("AliyunRAMReadOnlyAccess", "System"),
                }
                assert versions(ram, "pull-images") == {"v1": False, "v2": False, "v3": True}
                v1 = ram.get_policy_version(
                    m.GetPolicyVersionRequest(
                        policy_name="pull-images", policy_type="Custom", version_id="v1"
                    )
                ).body.policy_version
                assert v1.policy_document == permission("cr:Get*")
                policy = ram.get_policy(
                    m.GetPolicyRequest(policy_name="pull-images", policy_type="Custom")
                ).body.policy
                assert (policy.policy_document, policy.description) == (PULL, "pull from cri-demo")
                assert policy.attachment_count == 1
                ram.detach_policy_from_role(
                    m.DetachPolicyFromRoleRequest(
                        policy_type="Custom", policy_name="pull-images", role_name="SaePuller"
                    )
                )
                admin.reset()
        finally:
            admin.close()


def test_world_policy_beyond_five_versions_is_refused(tmp_path: Path) -> None:
    """RAM never holds six versions of a policy, so a world file may not seed one either."""
    policy = {**WORLD_RAM["policies"][0], "versions": [permission(f"cr:A{i}") for i in range(5)]}
    world = World.model_validate(_world_data({"roles": [], "policies": [policy]}))
    store = Store(tmp_path / "state.db")
    try:
        with pytest.raises(ValueError, match="more than 5 versions"), store.transaction() as tx:
            ram_service.seed(tx, world)
    finally:
        store.close()
