"""The resources (ARNs) a call is authorized on, as each product's RAM authorization table names
them; a RAM user or an assumed role needs the route's action on every one.

Sources: RAM (`acs:ram:*:<uid>:role/<name>`, `...:policy/<name>`, system policies owned by
`system`; the RAM authorization page https://www.alibabacloud.com/help/doc-detail/317677.htm;
ListPoliciesForUser and ListGroupsForUser on `acs:ram:*:<uid>:user/<UserName>`, their pages'
authorization tables https://help.aliyun.com/document_detail/28732.html and
https://help.aliyun.com/zh/ram/developer-reference/api-ram-2015-05-01-listgroupsforuser;
ListPoliciesForGroup on `acs:ram:*:<uid>:group/<GroupName>`,
https://help.aliyun.com/document_detail/28733.html),
STS AssumeRole (the role's ARN in the role's account), VPC
(`acs:vpc:<region>:<uid>:vpc/<id>`, `...:vswitch/<id>`;
https://www.alibabacloud.com/help/doc-detail/317673.htm; the Describe* listings are "All
Resources"), Container Registry (`GetAuthorizationToken` on `*` only; instance APIs, listing an
instance's repositories included, on
`acs:cr:<region>:<uid>:instance/<id>`, repository APIs on
`acs:cr:<region>:<uid>:repository/<instance>/<namespace>/<repo>`; reference section 6.3) and SAE
(StopApplication on `acs:sae:<region>:<uid>:application/<NamespaceId>/<AppId>`:
https://help.aliyun.com/zh/sae/api-sae-2019-05-06-stopapplication; DescribeChangeOrder,
UpdateApplicationDescription and UpdateAppSecurityGroup, which name an application too, are "All
Resources": https://www.alibabacloud.com/help/ja/sae/api-sae-2019-05-06-describechangeorder and
its sibling pages).

An action a table gives as "All Resources" is checked on `*` itself, so only a statement whose
Resource is `*` grants it (the documents say to write `*` there; a scoped statement "will be
ineffective"). Where no table could be read (SAE's other actions), the sandbox takes that
stricter reading too: a statement scoped to an application grants StopApplication only.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.call import Call
from sandbox.services import cr, sts
from sandbox.services.sae import lifecycle
from sandbox.store import Scope

ALL = "*"
"""The resource of an action without resource-level permission."""


def resources(call: Call) -> tuple[str, ...]:
    """Every resource the call's action is authorized on (all must be allowed)."""
    return _BY_PRODUCT[call.route.product.code](call)


def _region(call: Call) -> str:
    return call.addressed_region or "*"


# -- RAM and STS (global) --------------------------------------------------------------------------

_RAM_ROLE_ACTIONS = {"CreateRole", "GetRole", "UpdateRole", "DeleteRole", "ListPoliciesForRole"}
_RAM_POLICY_ACTIONS = {
    "CreatePolicy",
    "GetPolicy",
    "GetPolicyVersion",
    "CreatePolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeletePolicy",
    "ListEntitiesForPolicy",
}


_RAM_USER_ACTIONS = {"ListPoliciesForUser", "ListGroupsForUser"}
_RAM_GROUP_ACTIONS = {"ListPoliciesForGroup"}


def _ram_role(call: Call) -> str:
    return f"acs:ram:*:{call.caller.account}:role/{call.params.text('RoleName')}"


def _ram_policy(call: Call) -> str:
    """System policies belong to the account `system` in their ARNs."""
    owner = "system" if call.params.text("PolicyType") == "System" else call.caller.account
    return f"acs:ram:*:{owner}:policy/{call.params.text('PolicyName')}"


def _ram(call: Call) -> tuple[str, ...]:
    action = call.route.action
    if action in _RAM_ROLE_ACTIONS:
        return (_ram_role(call),)
    if action in _RAM_POLICY_ACTIONS:
        return (_ram_policy(call),)
    if action in _RAM_USER_ACTIONS:
        return (f"acs:ram:*:{call.caller.account}:user/{call.params.text('UserName')}",)
    if action in _RAM_GROUP_ACTIONS:
        return (f"acs:ram:*:{call.caller.account}:group/{call.params.text('GroupName')}",)
    if action in ("AttachPolicyToRole", "DetachPolicyFromRole"):
        return (_ram_role(call), _ram_policy(call))
    if action == "ListRoles":
        return (f"acs:ram:*:{call.caller.account}:role/*",)
    return (ALL,)


def _sts(call: Call) -> tuple[str, ...]:
    """AssumeRole is authorized on the role, in the account that owns it."""
    match = sts.ROLE_ARN.match(call.params.text("RoleArn"))
    if call.route.action != "AssumeRole" or match is None:
        return (ALL,)
    return (f"acs:ram:*:{match.group(1)}:role/{match.group(2)}",)


# -- VPC, CR, SAE (regional) -----------------------------------------------------------------------


def _vpc(call: Call) -> tuple[str, ...]:
    base = f"acs:vpc:{_region(call)}:{call.caller.account}"
    if call.route.action == "DescribeVpcAttribute":
        return (f"{base}:vpc/{call.params.text('VpcId')}",)
    if call.route.action == "DescribeVSwitchAttributes":
        return (f"{base}:vswitch/{call.params.text('VSwitchId')}",)
    return (ALL,)


def _repository_path(call: Call, instance_id: str) -> str:
    """`<instance>/<namespace>/<repo>`, by name or by RepoId (an unknown id stays as given)."""
    namespace, name = call.params.text("RepoNamespaceName"), call.params.text("RepoName")
    repo_id = call.params.text("RepoId")
    found = cr.find_instance(call.tx, call.caller.account, instance_id) if repo_id else None
    for repo in found[1]["repos"] if found else []:
        if repo["id"] == repo_id:
            namespace, name = repo["namespace"], repo["name"]
    return f"{instance_id}/{namespace}/{name}" if namespace and name else f"{instance_id}/{repo_id}"


def _cr(call: Call) -> tuple[str, ...]:
    base = f"acs:cr:{_region(call)}:{call.caller.account}"
    action = call.route.action
    instance_id = call.params.text("InstanceId")
    if action == "GetAuthorizationToken":
        return (ALL,)
    if action == "ListInstance":
        return (ALL,)
    if action in ("GetRepository", "ListRepoTag", "GetRepoTag"):
        return (f"{base}:repository/{_repository_path(call, instance_id)}",)
    return (f"{base}:instance/{instance_id}",)


_SAE_APPLICATION_ACTIONS = {"StopApplication"}
"""The SAE actions whose authorization table names the application resource."""


def _sae(call: Call) -> tuple[str, ...]:
    if call.route.action not in _SAE_APPLICATION_ACTIONS:
        return (ALL,)
    region, account = _region(call), call.caller.account
    app_id = call.params.text("AppId")
    app = lifecycle.find_app(call.tx, Scope(account, region), app_id)
    namespace = str(app["NamespaceId"]) if app else ""
    return (f"acs:sae:{region}:{account}:application/{namespace}/{app_id}",)


_BY_PRODUCT: dict[str, Callable[[Call], tuple[str, ...]]] = {
    "ram": _ram,
    "sts": _sts,
    "vpc": _vpc,
    "cr": _cr,
    "sae": _sae,
}
