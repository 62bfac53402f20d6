"""RAM 2015-05-01: roles, custom policies with versions, and role attachments; the world file's
users and user groups, which can be read (their policies, a user's groups) but not changed.

Rules enforced as documented (reference section 3): name formats, policy grammar and size limits,
at most five versions per policy, the default version cannot be deleted, policies and roles with
attachments cannot be deleted. Role and policy names are unique regardless of case.

Unknown users and groups are RAM's 404 `EntityNotExist.User` ("The user does not exist.") and
`EntityNotExist.Group` ("The group does not exist."), from RAM's error table (AlibabaCloudDocs/ram
`Error messages.md`, reference S12).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from typing import Any

from sandbox.call import Call, iso_time
from sandbox.errors import ApiError
from sandbox.policy import PolicyDocument, PolicyError, PolicyKind
from sandbox.services.ram_system_policies import SYSTEM_POLICIES
from sandbox.store import Doc, Scope, Tx
from sandbox.world import World

ROLE = "ram_role"
POLICY = "ram_policy"
ATTACHMENT = "ram_attachment"
USER = "ram_user"
GROUP = "ram_group"

MAX_VERSIONS = 5
MAX_ROLES = 1000
MAX_CUSTOM_POLICIES_PER_ROLE = 5
MAX_SYSTEM_POLICIES_PER_ROLE = 20
MAX_POLICIES = 1500

_ROLE_NAME = re.compile(r"^[a-zA-Z0-9.\-]+$")
_POLICY_NAME = re.compile(r"^[a-zA-Z0-9\-]+$")
_VERSION_ID = re.compile(r"^v[1-9]\d{0,8}$")


# -- lookups shared with STS and the permission gate ---------------------------------------------


def find_role(tx: Tx, account: str, name: str) -> Doc | None:
    return tx.get(Scope(account), ROLE, name.lower())


def role_permission_documents(tx: Tx, account: str, role_name: str) -> list[PolicyDocument]:
    """The default versions of every policy attached to a role, parsed."""
    return _documents(tx, account, _attachments(tx, account, role=role_name))


def find_user(tx: Tx, account: str, name: str) -> Doc | None:
    return tx.get(Scope(account), USER, name.lower())


def find_group(tx: Tx, account: str, name: str) -> Doc | None:
    return tx.get(Scope(account), GROUP, name.lower())


def user_permission_documents(tx: Tx, account: str, user_name: str) -> list[PolicyDocument]:
    """The default versions of every policy attached to a RAM user or to a group it is in, parsed
    (none: no user). A RAM user inherits its groups' permissions (Cloud Config's rule
    ram-user-no-policy-check: "RAM用户应当从RAM用户组或RAM角色继承权限",
    https://help.aliyun.com/document_detail/209352.html)."""
    user = find_user(tx, account, user_name)
    if user is None:
        return []
    links = list(user["Policies"])
    for membership in user.get("Groups", []):
        group = find_group(tx, account, membership["GroupName"])
        if group is not None:
            links += group["Policies"]
    return _documents(tx, account, links)


def user_id(account: str, name: str) -> str:
    """A RAM user's UserId: 16 digits, as RAM's are (GetUser, `UserId` "122748924538****"),
    stable for an account and user name so every seed of a world gives the same one."""
    digest = hashlib.sha256(f"{account}/{name.lower()}".encode()).hexdigest()
    return str(int(digest, 16))[:16]


def _documents(tx: Tx, account: str, links: list[Doc]) -> list[PolicyDocument]:
    """The default version of each linked policy (`PolicyType`, `PolicyName`), parsed."""
    documents: list[PolicyDocument] = []
    for link in links:
        text = _policy_document_text(tx, account, link["PolicyType"], link["PolicyName"])
        if text is not None:
            documents.append(PolicyDocument.parse(text, "permission"))
    return documents


def trust_document(role: Doc) -> PolicyDocument:
    return PolicyDocument.parse(str(role["AssumeRolePolicyDocument"]), "trust")


def _policy_document_text(tx: Tx, account: str, policy_type: str, name: str) -> str | None:
    if policy_type == "System":
        entry = SYSTEM_POLICIES.get(name)
        return entry[1] if entry else None
    policy = tx.get(Scope(account), POLICY, name.lower())
    if policy is None:
        return None
    return str(_version(policy, policy["DefaultVersion"])["PolicyDocument"])


def _attachments(
    tx: Tx, account: str, *, role: str | None = None, policy: tuple[str, str] | None = None
) -> list[Doc]:
    links = tx.all(Scope(account), ATTACHMENT)
    if role is not None:
        links = [x for x in links if x["RoleName"].lower() == role.lower()]
    if policy is not None:
        ptype, pname = policy
        links = [
            x
            for x in links
            if x["PolicyType"] == ptype and x["PolicyName"].lower() == pname.lower()
        ]
    return links


def _user_links(tx: Tx, account: str, policy: tuple[str, str]) -> list[tuple[Doc, Doc]]:
    """Each RAM user (from the world file) with its link to this policy (type, name)."""
    ptype, pname = policy
    return [
        (user, link)
        for user in tx.all(Scope(account), USER)
        for link in user["Policies"]
        if link["PolicyType"] == ptype and link["PolicyName"].lower() == pname.lower()
    ]


def _group_links(tx: Tx, account: str, policy: tuple[str, str]) -> list[tuple[Doc, Doc]]:
    """Each user group (from the world file) with its link to this policy (type, name)."""
    ptype, pname = policy
    return [
        (group, link)
        for group in tx.all(Scope(account), GROUP)
        for link in group["Policies"]
        if link["PolicyType"] == ptype and link["PolicyName"].lower() == pname.lower()
    ]


def _attachment_count(tx: Tx, account: str, policy: tuple[str, str]) -> int:
    """GetPolicy's AttachmentCount: the roles, users and groups the policy is attached to."""
    return (
        len(_attachments(tx, account, policy=policy))
        + len(_user_links(tx, account, policy))
        + len(_group_links(tx, account, policy))
    )


def attachment_id(role: str, policy_type: str, policy: str) -> str:
    """The store key of a role's attachment (RAM compares role and policy names ignoring case)."""
    return f"{role.lower()}|{policy_type}|{policy.lower()}"


# -- validation ------------------------------------------------------------------------------------


def _role_name(call: Call, param: str = "RoleName") -> str:
    name = call.params.text(param)
    if len(name) > 64:
        raise ApiError(
            400,
            "InvalidParameter.RoleName.Length",
            'The parameter - "RoleName" beyond the length limit.',
        )
    if not _ROLE_NAME.match(name):
        raise ApiError(
            400,
            "InvalidParameter.RoleName.InvalidChars",
            'The parameter - "RoleName" contains invalid chars.',
        )
    return name


def _policy_name(call: Call) -> str:
    name = call.params.text("PolicyName")
    if len(name) > 128:
        raise ApiError(
            400,
            "InvalidParameter.PolicyName.Length",
            'The parameter - "PolicyName" beyond the length limit.',
        )
    if not _POLICY_NAME.match(name):
        raise ApiError(
            400,
            "InvalidParameter.PolicyName.InvalidChars",
            'The parameter - "PolicyNam" contains invalid chars.',
        )
    return name


def _policy_type(call: Call) -> str:
    value = call.params.text("PolicyType")
    if value not in ("System", "Custom"):
        raise ApiError(
            400, "InvalidParameter.PolicyType", 'The parameter - "PolicyType" is incorrect.'
        )
    return value


def _version_id(call: Call) -> str:
    value = call.params.text("VersionId")
    if not _VERSION_ID.match(value):
        raise ApiError(
            400,
            "InvalidParameter.VersionId.Format",
            'The format of the parameter - "VersionId" is incorrect.',
        )
    return value


def _description(call: Call, param: str) -> str:
    value = call.params.text(param)
    if len(value) > 1024:
        raise ApiError(
            400,
            "InvalidParameter.Description.Length",
            'The parameter - "Description" beyond the length limit.',
        )
    return value


def _max_session(call: Call, param: str, default: int | None) -> int | None:
    if not call.params.text(param):
        return default
    value = call.params.integer(param)
    if not 3600 <= value <= 43200:
        raise ApiError(
            400,
            f"InvalidParameter.{param}",
            f'The parameter - "{param}" must be between 3600 and 43200.',
        )
    return value


def _checked_document(
    text: str, kind: PolicyKind, length_code: str, length_param: str, *, in_bytes: bool = False
) -> str:
    """Size, then grammar. CreatePolicyVersion counts bytes, the others characters (3.1)."""
    limit = 6144 if kind == "permission" else 4096
    size = len(text.encode()) if in_bytes else len(text)
    if size > limit:
        # RAM names "PolicyName" in the PolicyDocument length message (sic, reference 3.3).
        shown = "PolicyName" if length_param == "PolicyDocument" else length_param
        raise ApiError(400, length_code, f'The parameter - "{shown}" beyond the length limit.')
    try:
        PolicyDocument.parse(text, kind)
    except PolicyError as exc:
        raise ApiError(400, "MalformedPolicyDocument", str(exc)) from None
    return text


def _role_or_404(call: Call, name: str) -> Doc:
    role = find_role(call.tx, call.caller.account, name)
    if role is None:
        raise ApiError(404, "EntityNotExist.Role", "The role does not exist.")
    return role


def _policy_or_404(call: Call, name: str) -> Doc:
    policy = call.tx.get(call.scope(), POLICY, name.lower())
    if policy is None:
        raise ApiError(404, "EntityNotExist.Policy", "The policy does not exist.")
    return policy


def _version(policy: Doc, version_id: str) -> Doc:
    for version in policy["Versions"]:
        if version["VersionId"] == version_id:
            return dict(version)
    raise ApiError(404, "EntityNotExist.Policy.Version", "The policy version does not exist.")


# -- views -----------------------------------------------------------------------------------------


_ROLE_FIELDS = (
    "RoleId",
    "RoleName",
    "Arn",
    "Description",
    "AssumeRolePolicyDocument",
    "CreateDate",
    "UpdateDate",
    "MaxSessionDuration",
    "AllowConsoleLogin",
)


def _role_view(role: Doc, *, full: bool = True, principal: bool = True) -> Doc:
    """`principal`: GetRole's model has RolePrincipalName and IsServiceLinkedRole; the SDK models
    of CreateRole's and UpdateRole's Role do not (alibabacloud_ram20150501 models), so those
    answers leave them out."""
    view = {k: role[k] for k in _ROLE_FIELDS if k in role}
    if not full:
        view.pop("AssumeRolePolicyDocument", None)
    elif principal:
        view["RolePrincipalName"] = f"{role['RoleName']}@role.{role['Account']}.onaliyunservice.com"
        view["IsServiceLinkedRole"] = False
    return view


def _version_view(policy: Doc, version: Doc) -> Doc:
    return {**version, "IsDefaultVersion": version["VersionId"] == policy["DefaultVersion"]}


def _policy_view(policy: Doc, attachments: int) -> Doc:
    return {
        "PolicyName": policy["PolicyName"],
        "PolicyType": "Custom",
        "Description": policy["Description"],
        "DefaultVersion": policy["DefaultVersion"],
        "CreateDate": policy["CreateDate"],
        "UpdateDate": policy["UpdateDate"],
        "AttachmentCount": attachments,
        "PolicyDocument": _version(policy, policy["DefaultVersion"])["PolicyDocument"],
    }


# -- roles -----------------------------------------------------------------------------------------


def new_role(
    account: str, name: str, trust: str, description: str, max_session: int, now: float
) -> Doc:
    """A role document as CreateRole stores it (the world file's roles are seeded with it)."""
    stamp = iso_time(now)
    return {
        "Account": account,
        "RoleId": str(random.randint(3 * 10**17, 4 * 10**17 - 1)),
        "RoleName": name,
        "Arn": f"acs:ram::{account}:role/{name}",
        "Description": description,
        "AssumeRolePolicyDocument": trust,
        "CreateDate": stamp,
        "UpdateDate": stamp,
        "MaxSessionDuration": max_session,
        "AllowConsoleLogin": False,
    }


def create_role(call: Call) -> dict[str, Any]:
    name = _role_name(call)
    trust = _checked_document(
        call.params.text("AssumeRolePolicyDocument"),
        "trust",
        "InvalidParameter.AssumeRolePolicyDocument.Length",
        "AssumeRolePolicyDocument",
    )
    description = _description(call, "Description")
    max_session = _max_session(call, "MaxSessionDuration", 3600)
    assert max_session is not None
    if find_role(call.tx, call.caller.account, name) is not None:
        raise ApiError(409, "EntityAlreadyExists.Role", "The role does already EXIST.")
    if len(call.tx.all(call.scope(), ROLE)) >= MAX_ROLES:
        raise ApiError(409, "LimitExceeded.Role", "The count of roles beyond the current limits.")
    role = new_role(call.caller.account, name, trust, description, max_session, call.now)
    call.tx.put(call.scope(), ROLE, name.lower(), role)
    view = _role_view(role, principal=False)
    view.pop("UpdateDate", None)
    return {"Role": view}


def get_role(call: Call) -> dict[str, Any]:
    return {"Role": _role_view(_role_or_404(call, _role_name(call)))}


def update_role(call: Call) -> dict[str, Any]:
    role = _role_or_404(call, _role_name(call))
    trust = call.params.text("NewAssumeRolePolicyDocument")
    if trust:
        role["AssumeRolePolicyDocument"] = _checked_document(
            trust,
            "trust",
            "InvalidParameter.NewAssumeRolePolicyDocument.Length",
            "NewAssumeRolePolicyDocument",
        )
    if "NewDescription" in call.params:
        role["Description"] = _description(call, "NewDescription")
    max_session = _max_session(call, "NewMaxSessionDuration", None)
    if max_session is not None:
        role["MaxSessionDuration"] = max_session
    role["UpdateDate"] = iso_time(call.now)
    call.tx.put(call.scope(), ROLE, role["RoleName"].lower(), role)
    return {"Role": _role_view(role, principal=False)}


def delete_role(call: Call) -> dict[str, Any]:
    role = _role_or_404(call, _role_name(call))
    if _attachments(call.tx, call.caller.account, role=role["RoleName"]):
        raise ApiError(
            409,
            "DeleteConflict.Role.Policy",
            "The role CAN NOT has any attached policy while deleting the role.",
        )
    call.tx.delete(call.scope(), ROLE, role["RoleName"].lower())
    return {}


def _page(call: Call, items: list[Doc]) -> tuple[list[Doc], dict[str, Any]]:
    """RAM's Marker/MaxItems paging; the marker is an opaque offset."""
    max_items = call.params.integer("MaxItems", default=100, minimum=1, maximum=1000)
    marker = call.params.text("Marker")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
            if start < 0:
                raise ValueError(start)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                400, "InvalidParameter.Marker", 'The parameter - "Marker" is invalid.'
            ) from None
    chunk = items[start : start + max_items]
    truncated = start + max_items < len(items)
    extra: dict[str, Any] = {"IsTruncated": truncated}
    if truncated:
        extra["Marker"] = base64.urlsafe_b64encode(str(start + max_items).encode()).decode()
    return chunk, extra


def list_roles(call: Call) -> dict[str, Any]:
    roles = [_role_view(r, full=False) for r in call.tx.all(call.scope(), ROLE)]
    chunk, extra = _page(call, roles)
    return {"Roles": {"Role": chunk}, **extra}


# -- policies --------------------------------------------------------------------------------------


def create_policy(call: Call) -> dict[str, Any]:
    name = _policy_name(call)
    document = _checked_document(
        call.params.text("PolicyDocument"),
        "permission",
        "InvalidParameter.PolicyDocument.Length",
        "PolicyDocument",
    )
    description = _description(call, "Description")
    if call.tx.get(call.scope(), POLICY, name.lower()) is not None:
        raise ApiError(409, "EntityAlreadyExists.Policy", "The group does already EXIST.")
    if len(call.tx.all(call.scope(), POLICY)) >= MAX_POLICIES:
        raise ApiError(
            409, "LimitExceeded.Policy", "The count of policy beyond the current limits."
        )
    policy = new_policy(name, description, [document], call.now)
    call.tx.put(call.scope(), POLICY, name.lower(), policy)
    return {
        "Policy": {
            "PolicyName": name,
            "PolicyType": "Custom",
            "Description": description,
            "DefaultVersion": "v1",
            "CreateDate": policy["CreateDate"],
        }
    }


def new_policy(name: str, description: str, documents: list[str], now: float) -> Doc:
    """A custom policy whose versions are `documents` in order; the last one is the default."""
    stamp = iso_time(now)
    versions = [
        {"VersionId": f"v{i}", "PolicyDocument": doc, "CreateDate": stamp}
        for i, doc in enumerate(documents, start=1)
    ]
    return {
        "PolicyName": name,
        "Description": description,
        "CreateDate": stamp,
        "UpdateDate": stamp,
        "DefaultVersion": versions[-1]["VersionId"],
        "Versions": versions,
        "NextVersion": len(versions) + 1,
    }


def get_policy(call: Call) -> dict[str, Any]:
    name, policy_type = _policy_name(call), _policy_type(call)
    if policy_type == "System":
        entry = SYSTEM_POLICIES.get(name)
        if entry is None:
            raise ApiError(404, "EntityNotExist.Policy", "The policy does not exist.")
        description, text = entry
        attached = _attachment_count(call.tx, call.caller.account, ("System", name))
        return {
            "Policy": {
                "PolicyName": name,
                "PolicyType": "System",
                "Description": description,
                "DefaultVersion": "v1",
                "AttachmentCount": attached,
                "PolicyDocument": text,
                "CreateDate": "2015-04-28T16:00:00Z",
                "UpdateDate": "2015-04-28T16:00:00Z",
            },
            "DefaultPolicyVersion": {
                "VersionId": "v1",
                "IsDefaultVersion": True,
                "PolicyDocument": text,
                "CreateDate": "2015-04-28T16:00:00Z",
            },
        }
    policy = _policy_or_404(call, name)
    attached = _attachment_count(call.tx, call.caller.account, ("Custom", name))
    default = _version(policy, policy["DefaultVersion"])
    return {
        "Policy": _policy_view(policy, attached),
        "DefaultPolicyVersion": {**default, "IsDefaultVersion": True},
    }


def _system_versions(name: str) -> list[Doc]:
    entry = SYSTEM_POLICIES.get(name)
    if entry is None:
        raise ApiError(404, "EntityNotExist.Policy", "The policy does not exist.")
    return [
        {
            "VersionId": "v1",
            "IsDefaultVersion": True,
            "PolicyDocument": entry[1],
            "CreateDate": "2015-04-28T16:00:00Z",
        }
    ]


def get_policy_version(call: Call) -> dict[str, Any]:
    name, policy_type, version_id = _policy_name(call), _policy_type(call), _version_id(call)
    if policy_type == "System":
        versions = [v for v in _system_versions(name) if v["VersionId"] == version_id]
        if not versions:
            raise ApiError(
                404, "EntityNotExist.Policy.Version", "The policy version does not exist."
            )
        return {"PolicyVersion": versions[0]}
    policy = _policy_or_404(call, name)
    return {"PolicyVersion": _version_view(policy, _version(policy, version_id))}


def create_policy_version(call: Call) -> dict[str, Any]:
    name = _policy_name(call)
    text = _checked_document(
        call.params.text("PolicyDocument"),
        "permission",
        "InvalidParameter.PolicyDocument.Length",
        "PolicyDocument",
        in_bytes=True,
    )
    set_default = call.params.flag("SetAsDefault")
    rotate = call.params.choice(
        "RotateStrategy", ("None", "DeleteOldestNonDefaultVersionWhenLimitExceeded"), default="None"
    )
    policy = _policy_or_404(call, name)
    if len(policy["Versions"]) >= MAX_VERSIONS:
        if rotate == "None":
            raise ApiError(
                409,
                "LimitExceeded.Policy.Version",
                "The count of policy version beyond the current limits.",
            )
        oldest = next(v for v in policy["Versions"] if v["VersionId"] != policy["DefaultVersion"])
        policy["Versions"] = [v for v in policy["Versions"] if v is not oldest]
    stamp = iso_time(call.now)
    version = {
        "VersionId": f"v{policy['NextVersion']}",
        "PolicyDocument": text,
        "CreateDate": stamp,
    }
    policy["NextVersion"] += 1
    policy["Versions"].append(version)
    if set_default:
        policy["DefaultVersion"] = version["VersionId"]
    policy["UpdateDate"] = stamp
    call.tx.put(call.scope(), POLICY, name.lower(), policy)
    return {"PolicyVersion": _version_view(policy, version)}


def list_policy_versions(call: Call) -> dict[str, Any]:
    name, policy_type = _policy_name(call), _policy_type(call)
    if policy_type == "System":
        return {"PolicyVersions": {"PolicyVersion": _system_versions(name)}}
    policy = _policy_or_404(call, name)
    versions = [_version_view(policy, v) for v in reversed(policy["Versions"])]
    return {"PolicyVersions": {"PolicyVersion": versions}}


def delete_policy_version(call: Call) -> dict[str, Any]:
    name, version_id = _policy_name(call), _version_id(call)
    policy = _policy_or_404(call, name)
    _version(policy, version_id)
    if version_id == policy["DefaultVersion"]:
        raise ApiError(
            409,
            "DeleteConflict.Policy.Version.Default",
            "The default policy version CAN NOT been deleted directly.",
        )
    policy["Versions"] = [v for v in policy["Versions"] if v["VersionId"] != version_id]
    call.tx.put(call.scope(), POLICY, name.lower(), policy)
    return {}


def set_default_policy_version(call: Call) -> dict[str, Any]:
    name, version_id = _policy_name(call), _version_id(call)
    policy = _policy_or_404(call, name)
    _version(policy, version_id)
    policy["DefaultVersion"] = version_id
    policy["UpdateDate"] = iso_time(call.now)
    call.tx.put(call.scope(), POLICY, name.lower(), policy)
    return {}


def delete_policy(call: Call) -> dict[str, Any]:
    name = _policy_name(call)
    cascade = call.params.flag("CascadingDelete")
    policy = _policy_or_404(call, name)
    if _attachments(call.tx, call.caller.account, policy=("Custom", name)):
        raise ApiError(
            409,
            "DeleteConflict.Policy.Role",
            "The policy CAN NOT been attached to any role while deleting the policy.",
        )
    if _user_links(call.tx, call.caller.account, ("Custom", name)):
        raise ApiError(
            409,
            "DeleteConflict.Policy.User",
            "The policy CAN NOT been attached to any user while deleting the policy.",
        )
    if _group_links(call.tx, call.caller.account, ("Custom", name)):
        raise ApiError(
            409,
            "DeleteConflict.Policy.Group",
            "The policy CAN NOT been attached to any group while deleting the policy.",
        )
    if len(policy["Versions"]) > 1 and not cascade:
        raise ApiError(
            409,
            "DeleteConflict.Policy.Version",
            "The policy CAN NOT has any version except the defaul version.",
        )
    call.tx.delete(call.scope(), POLICY, name.lower())
    return {}


# -- attachments -----------------------------------------------------------------------------------


def _policy_exists(call: Call, policy_type: str, name: str) -> str:
    """The policy's canonical name, or 404."""
    if policy_type == "System":
        if name not in SYSTEM_POLICIES:
            raise ApiError(404, "EntityNotExist.Policy", "The policy does not exist.")
        return name
    return str(_policy_or_404(call, name)["PolicyName"])


def attach_policy_to_role(call: Call) -> dict[str, Any]:
    policy_type, policy_name, role_name = _policy_type(call), _policy_name(call), _role_name(call)
    role = _role_or_404(call, role_name)
    policy_name = _policy_exists(call, policy_type, policy_name)
    key = attachment_id(role["RoleName"], policy_type, policy_name)
    if call.tx.get(call.scope(), ATTACHMENT, key) is not None:
        raise ApiError(
            409,
            "EntityAlreadyExists.Role.Policy",
            "The policy has already been attached to the role.",
        )
    same_type = [
        x
        for x in _attachments(call.tx, call.caller.account, role=role["RoleName"])
        if x["PolicyType"] == policy_type
    ]
    limit = (
        MAX_CUSTOM_POLICIES_PER_ROLE if policy_type == "Custom" else MAX_SYSTEM_POLICIES_PER_ROLE
    )
    if len(same_type) >= limit:
        raise ApiError(
            409,
            "LimitExceeded.Role.Policy",
            "The count of policies attached to the role beyond the current limits.",
        )
    call.tx.put(
        call.scope(),
        ATTACHMENT,
        key,
        {
            "RoleName": role["RoleName"],
            "PolicyName": policy_name,
            "PolicyType": policy_type,
            "AttachDate": iso_time(call.now),
        },
    )
    return {}


def detach_policy_from_role(call: Call) -> dict[str, Any]:
    policy_type, policy_name, role_name = _policy_type(call), _policy_name(call), _role_name(call)
    role = _role_or_404(call, role_name)
    policy_name = _policy_exists(call, policy_type, policy_name)
    if not call.tx.delete(
        call.scope(), ATTACHMENT, attachment_id(role["RoleName"], policy_type, policy_name)
    ):
        raise ApiError(404, "EntityNotExist.Role.Policy", "The policy is not attached to the role.")
    return {}


def list_policies_for_role(call: Call) -> dict[str, Any]:
    role = _role_or_404(call, _role_name(call))
    out = []
    for link in _attachments(call.tx, call.caller.account, role=role["RoleName"]):
        if link["PolicyType"] == "System":
            description, default = SYSTEM_POLICIES[link["PolicyName"]][0], "v1"
        else:
            policy = call.tx.get(call.scope(), POLICY, link["PolicyName"].lower())
            assert policy is not None
            description, default = policy["Description"], policy["DefaultVersion"]
        out.append({**link, "Description": description, "DefaultVersion": default})
    for link in out:
        link.pop("RoleName")
    return {"Policies": {"Policy": out}}


def list_entities_for_policy(call: Call) -> dict[str, Any]:
    name, policy_type = _policy_name(call), _policy_type(call)
    name = _policy_exists(call, policy_type, name)
    roles = []
    for link in _attachments(call.tx, call.caller.account, policy=(policy_type, name)):
        role = find_role(call.tx, call.caller.account, link["RoleName"])
        if role is not None:
            roles.append(
                {
                    "RoleName": role["RoleName"],
                    "RoleId": role["RoleId"],
                    "Arn": role["Arn"],
                    "Description": role["Description"],
                    "AttachDate": link["AttachDate"],
                }
            )
    users = [
        {
            "UserName": user["UserName"],
            "UserId": user["UserId"],
            "DisplayName": user["UserName"],
            "AttachDate": link["AttachDate"],
        }
        for user, link in _user_links(call.tx, call.caller.account, (policy_type, name))
    ]
    groups = [
        {
            "GroupName": group["GroupName"],
            "Comments": group["Comments"],
            "AttachDate": link["AttachDate"],
        }
        for group, link in _group_links(call.tx, call.caller.account, (policy_type, name))
    ]
    return {"Roles": {"Role": roles}, "Users": {"User": users}, "Groups": {"Group": groups}}


# -- users and groups (read only: the world file makes them) -------------------------------------


def _user_or_404(call: Call) -> Doc:
    user = find_user(call.tx, call.caller.account, call.params.text("UserName", required=True))
    if user is None:
        raise ApiError(404, "EntityNotExist.User", "The user does not exist.")
    return user


def _group_or_404(call: Call, name: str) -> Doc:
    group = find_group(call.tx, call.caller.account, name)
    if group is None:
        raise ApiError(404, "EntityNotExist.Group", "The group does not exist.")
    return group


def _policy_links_view(tx: Tx, account: str, links: list[Doc]) -> list[Doc]:
    """ListPoliciesFor{User,Group}'s Policy[]: PolicyName, PolicyType, Description,
    DefaultVersion, AttachDate (https://help.aliyun.com/document_detail/28732.html and
    https://help.aliyun.com/document_detail/28733.html)."""
    out = []
    for link in links:
        if link["PolicyType"] == "System":
            description, default = SYSTEM_POLICIES[link["PolicyName"]][0], "v1"
        else:
            policy = tx.get(Scope(account), POLICY, link["PolicyName"].lower())
            if policy is None:
                continue
            description, default = policy["Description"], policy["DefaultVersion"]
        out.append(
            {
                "PolicyName": link["PolicyName"],
                "PolicyType": link["PolicyType"],
                "Description": description,
                "DefaultVersion": default,
                "AttachDate": link["AttachDate"],
            }
        )
    return out


def list_policies_for_user(call: Call) -> dict[str, Any]:
    """The policies attached to the user itself (not those it has through its groups: RAM lists
    those with ListPoliciesForGroup)."""
    user = _user_or_404(call)
    return {
        "Policies": {"Policy": _policy_links_view(call.tx, call.caller.account, user["Policies"])}
    }


def list_groups_for_user(call: Call) -> dict[str, Any]:
    """Groups.Group[]: GroupId, GroupName, Comments, JoinDate
    (https://help.aliyun.com/zh/ram/developer-reference/api-ram-2015-05-01-listgroupsforuser)."""
    user = _user_or_404(call)
    groups = []
    for membership in user.get("Groups", []):
        group = find_group(call.tx, call.caller.account, membership["GroupName"])
        if group is not None:
            groups.append(
                {
                    "GroupId": group["GroupId"],
                    "GroupName": group["GroupName"],
                    "Comments": group["Comments"],
                    "JoinDate": membership["JoinDate"],
                }
            )
    return {"Groups": {"Group": groups}}


def list_policies_for_group(call: Call) -> dict[str, Any]:
    group = _group_or_404(call, call.params.text("GroupName", required=True))
    return {
        "Policies": {"Policy": _policy_links_view(call.tx, call.caller.account, group["Policies"])}
    }


def group_id(account: str, name: str) -> str:
    """A group's GroupId, `g-` and 16 letters and digits as RAM's example (`g-zYtroLrgbZR1****`,
    ListGroupsForUser), stable for an account and group name like `user_id`."""
    digest = int(hashlib.sha256(f"{account}/group/{name.lower()}".encode()).hexdigest(), 16)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    chars = []
    for _ in range(16):
        digest, index = divmod(digest, len(alphabet))
        chars.append(alphabet[index])
    return "g-" + "".join(chars)


# -- seeding ---------------------------------------------------------------------------------------


def _seed_links(names: list[str], custom: dict[str, str], now: float) -> list[Doc]:
    """A world-file user's or group's policy links; `custom` maps lower-case to canonical names."""
    return [
        {
            "PolicyName": custom.get(name.lower(), name),
            "PolicyType": "Custom" if name.lower() in custom else "System",
            "AttachDate": iso_time(now),
        }
        for name in names
    ]


def seed(tx: Tx, world: World) -> None:
    """Create the world's pre-existing roles, policies and attachments."""
    import time

    now = time.time()
    for account_name, ram in world.ram.items():
        account = world.account(account_name).uid
        scope = Scope(account)
        for spec in ram.policies:
            if len(spec.versions) + 1 > MAX_VERSIONS:
                raise ValueError(
                    f"ram.{account_name}: policy {spec.name} has more than {MAX_VERSIONS} versions"
                )
            for text in (*spec.versions, spec.document):
                PolicyDocument.parse(text, "permission")
            policy = new_policy(spec.name, spec.description, [*spec.versions, spec.document], now)
            tx.put(scope, POLICY, spec.name.lower(), policy)
        custom = {p.name.lower(): p.name for p in ram.policies}
        groups = {g.name.lower(): g.name for g in ram.groups}
        for group_spec in ram.groups:
            tx.put(
                scope,
                GROUP,
                group_spec.name.lower(),
                {
                    "GroupName": group_spec.name,
                    "GroupId": group_id(account, group_spec.name),
                    "Comments": group_spec.comments,
                    "Policies": _seed_links(group_spec.policies, custom, now),
                },
            )
        for user_spec in ram.users:
            tx.put(
                scope,
                USER,
                user_spec.name.lower(),
                {
                    "UserName": user_spec.name,
                    "UserId": user_id(account, user_spec.name),
                    "Policies": _seed_links(user_spec.policies, custom, now),
                    "Groups": [
                        {"GroupName": groups[name.lower()], "JoinDate": iso_time(now)}
                        for name in user_spec.groups
                    ],
                },
            )
        for role_spec in ram.roles:
            PolicyDocument.parse(role_spec.trust_policy, "trust")
            role = new_role(
                account,
                role_spec.name,
                role_spec.trust_policy,
                role_spec.description,
                role_spec.max_session_duration,
                now,
            )
            tx.put(scope, ROLE, role_spec.name.lower(), role)
            for policy_name in role_spec.attached:
                policy_type = "Custom" if policy_name.lower() in custom else "System"
                if policy_type == "System" and policy_name not in SYSTEM_POLICIES:
                    raise ValueError(
                        f"ram.{account_name}: role {role_spec.name} attaches unknown {policy_name}"
                    )
                canonical = custom.get(policy_name.lower(), policy_name)
                tx.put(
                    scope,
                    ATTACHMENT,
                    attachment_id(role_spec.name, policy_type, canonical),
                    {
                        "RoleName": role_spec.name,
                        "PolicyName": canonical,
                        "PolicyType": policy_type,
                        "AttachDate": iso_time(now),
                    },
                )
