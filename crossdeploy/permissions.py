"""The RAM permissions an operator's identity needs: what each step declares, per phase, and the
least-privilege policy document they add up to.

Each step declares the calls it makes with the resources RAM authorizes them on
(`tasks.step.Step.permissions`); `crossdeploy permissions` prints their union per account, and
the preflight (flows/preflight.py) checks the identity's own policies against the same list
before anything is written. Resource formats follow each product's RAM authorization table:
RAM `acs:ram:*:<uid>:role/<name>`, `...:policy/<name>`, `...:user/<name>` (system policies owned
by `system`; https://www.alibabacloud.com/help/doc-detail/317677.htm); VPC
`acs:vpc:<region>:<uid>:vpc/<id>`, `...:vswitch/<id>`, the Describe* listings on `*`
(https://www.alibabacloud.com/help/doc-detail/317673.htm); ACR instance APIs on
`acs:cr:<region>:<uid>:instance/<id>` and repository APIs on
`...:repository/<instance>/<namespace>/<repo>`, `GetAuthorizationToken` and `ListInstance` on `*`
(https://www.alibabacloud.com/help/en/acr/user-guide/ram-authorization-information); SAE's
actions this tool calls are "All Resources" on their API pages, or unknown, so `*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from crossdeploy.ram_policy import Document, permission_decision

Phase = Literal["plan", "deploy", "teardown"]
PHASES: tuple[Phase, ...] = ("plan", "deploy", "teardown")
ALL = "*"
"""The resource of an action without resource-level permission."""

RAM_ACTIONS = {
    # ListRepoTag: "cr:ListRepositoryTag" (https://www.alibabacloud.com/help/doc-detail/145295.htm)
    "cr:ListRepoTag": "cr:ListRepositoryTag",
    # GetRepoTag's authorization table names the same action
    # (https://www.alibabacloud.com/help/doc-detail/371968.htm)
    "cr:GetRepoTag": "cr:ListRepositoryTag",
}
"""API names whose RAM action differs (every other action is `<product>:<API name>`)."""


def ram_action(api: str) -> str:
    """The RAM action a call (`<product>:<API name>`, as `cloud.call` names it) is checked as."""
    return RAM_ACTIONS.get(api, api)


@dataclass(frozen=True, order=True)
class Permission:
    action: str
    """The RAM action (`ram:CreateRole`)."""
    resource: str
    """The ARN it is authorized on, or `*`."""

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


def grant(resource: str, *actions: str) -> tuple[Permission, ...]:
    return tuple(Permission(action, resource) for action in actions)


@dataclass(frozen=True)
class Needs:
    """What one step calls: `reads` when inspecting (plan, deploy, the failure diagnosis),
    `writes` when applying and following (deploy), `removes` at teardown."""

    reads: tuple[Permission, ...] = ()
    writes: tuple[Permission, ...] = ()
    removes: tuple[Permission, ...] = ()

    def of(self, phase: Phase) -> tuple[Permission, ...]:
        if phase == "plan":
            return self.reads
        if phase == "deploy":
            return self.reads + self.writes
        return self.removes


@dataclass(frozen=True)
class Arns:
    """The ARNs of one account's resources in one region."""

    uid: str
    region: str

    def ram_role(self, name: str) -> str:
        return f"acs:ram:*:{self.uid}:role/{name}"

    def ram_policy(self, name: str) -> str:
        return f"acs:ram:*:{self.uid}:policy/{name}"

    def ram_user(self, name: str) -> str:
        return f"acs:ram:*:{self.uid}:user/{name}"

    def ram_group(self, name: str) -> str:
        return f"acs:ram:*:{self.uid}:group/{name}"

    def vpc(self, kind: Literal["vpc", "vswitch"], resource_id: str = "*") -> str:
        return f"acs:vpc:{self.region}:{self.uid}:{kind}/{resource_id}"

    def cr_instance(self, instance_id: str | None) -> str:
        return f"acs:cr:{self.region}:{self.uid}:instance/{instance_id or '*'}"

    def cr_repository(self, instance_id: str | None, namespace: str, repo: str) -> str:
        return f"acs:cr:{self.region}:{self.uid}:repository/{instance_id or '*'}/{namespace}/{repo}"


SYSTEM_POLICIES = "acs:ram:*:system:policy/*"
"""Where system policies (AliyunSAEFullAccess, ...) live: GetPolicy reads them there."""


@dataclass(frozen=True)
class Identity:
    """Who a block acts as, from GetCallerIdentity's Arn: the account's root, a RAM user, or a
    role session (`acs:ram::<uid>:assumed-role/<role>/<session>`)."""

    arn: str
    kind: Literal["root", "user", "role", "unknown"]
    uid: str
    name: str = ""

    @classmethod
    def of(cls, arn: str) -> Identity:
        match = _IDENTITY.match(arn)
        if match is None:
            return cls(arn, "unknown", "")
        uid, rest = match.group(1), match.group(2)
        if rest == "root":
            return cls(arn, "root", uid)
        kind, _, name = rest.partition("/")
        if kind == "user":
            return cls(arn, "user", uid, name)
        if kind == "assumed-role":
            return cls(arn, "role", uid, name.partition("/")[0])
        return cls(arn, "unknown", uid)

    def own_policy_reads(self) -> tuple[Permission, ...]:
        """What the preflight calls to read this identity's policies: a user's own and its
        groups' (ListPoliciesForUser and ListGroupsForUser on the user, ListPoliciesForGroup on
        each group), or the role's (ListPoliciesForRole); GetPolicy on each policy attached."""
        arns = Arns(self.uid, "*")
        if self.kind == "user":
            listing = grant(
                arns.ram_user(self.name), "ram:ListPoliciesForUser", "ram:ListGroupsForUser"
            ) + grant(arns.ram_group("*"), "ram:ListPoliciesForGroup")
        elif self.kind == "role":
            listing = grant(arns.ram_role(self.name), "ram:ListPoliciesForRole")
        else:
            return ()
        return (
            listing
            + grant(arns.ram_policy("*"), "ram:GetPolicy")
            + grant(SYSTEM_POLICIES, "ram:GetPolicy")
        )


_IDENTITY = re.compile(r"^acs:ram::(\d+):(.+)$")


def policy_document(permissions: Iterable[Permission]) -> Document:
    """The least-privilege policy granting exactly these permissions: one statement per set of
    resources, actions and resources sorted, so the same needs print the same document."""
    resources: dict[str, set[str]] = {}
    for permission in permissions:
        resources.setdefault(permission.action, set()).add(permission.resource)
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for action, found in sorted(resources.items()):
        by_resources.setdefault(tuple(sorted(found)), []).append(action)
    statements = [
        {
            "Effect": "Allow",
            "Action": actions,
            "Resource": list(scope) if len(scope) > 1 else scope[0],
        }
        for scope, actions in sorted(by_resources.items(), key=lambda item: item[1][0])
    ]
    return {"Version": "1", "Statement": statements}


def missing(documents: Iterable[Document], needed: Iterable[Permission]) -> list[Permission]:
    """The needed permissions these policies do not grant (RAM's rules: a Deny wins; a
    conditional Allow is not counted, as ram_policy.permission_decision says why)."""
    held = list(documents)
    return [
        p for p in sorted(set(needed)) if permission_decision(held, p.action, p.resource) != "allow"
    ]
