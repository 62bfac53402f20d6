"""Account B: the RAM role SAE of account A assumes to pull the image, and its trust policy.

A missing role is created trusting exactly `<A uid>@sae.aliyuncs.com`. An existing role that
already lets A's SAE in is left alone. Otherwise one statement is appended and every other
statement is kept as it is, so nobody who could assume the role loses that right and nobody new
gains it but A's SAE; `access.exclusive_trust` replaces the whole trust policy instead. A Deny that
names A's SAE beats any Allow we could add, so that is BLOCKED unless the trust is replaced.

Teardown deletes the role only if this tool created it; for a role that existed, it takes out
exactly the statement it appended (or restores the replaced trust policy). Remove the pull
policy's attachment first: RAM refuses to delete a role that has policies attached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from alibabacloud_ram20150501 import models as ram_models

from crossdeploy import ram_policy
from crossdeploy.cloud import CloudError, call
from crossdeploy.ledger import Intent
from crossdeploy.permissions import Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, Change, PlanRow
from crossdeploy.spec import DeploySpec
from tasks.step import Accounts, Applied, Inspection, Step

NAME = "role"
RESOURCE_TYPE = "ram.role"

RoleAction = Literal["create", "merge", "replace", "none", "blocked"]


@dataclass(frozen=True)
class PullRoleState:
    role_name: str
    role_arn: str
    """`AcrAssumeRoleArn` for the app: acs:ram::<B uid>:role/<name>."""
    app_uid: str
    registry_uid: str
    exclusive: bool
    description: str
    action: RoleAction
    trust_now: str | None
    """The role's trust policy as read; None when the role is missing."""
    trust_wanted: str | None
    """The trust policy to write (create, merge, replace); None when nothing is to change."""
    rows: tuple[PlanRow, ...]


@dataclass(frozen=True)
class ExistingRole:
    """The role as RAM holds it now."""

    arn: str
    description: str
    trust: str


def inspect_pull_role(
    creds_b: Any, spec: DeploySpec, *, app_uid: str, registry_uid: str
) -> PullRoleState:
    """Compare the role and its trust with what SAE of account `app_uid` needs. Reads only."""
    return decide(
        _read(creds_b.get_client("ram"), spec.role_name),
        role_name=spec.role_name,
        app_uid=app_uid,
        registry_uid=registry_uid,
        exclusive=spec.access.exclusive_trust,
        description=ram_policy.managed_description(spec.app.name, app_uid),
    )


def apply_pull_role(creds_b: Any, state: PullRoleState) -> list[Change]:
    """Create the role or update its trust, only as `state` says; a BLOCKED role is left alone."""
    return _apply(creds_b.get_client("ram"), state, converge=True)


def remove_pull_role(creds_b: Any, changes: list[Change]) -> list[Change]:
    """Undo this step's changes (others in `changes` are ignored), newest first."""
    ram = creds_b.get_client("ram")
    undone: list[Change] = []
    for change in reversed([c for c in changes if c.resource_type == RESOURCE_TYPE]):
        undo = _UNDO.get(change.action)
        if undo is not None:
            undone += undo(ram, change)
    return undone


# -- reading and deciding ------------------------------------------------------------------------


def _read(ram: Any, name: str) -> ExistingRole | None:
    try:
        role = call(
            "ram:GetRole", ram.get_role, ram_models.GetRoleRequest(role_name=name)
        ).body.role
    except CloudError as exc:
        if exc.code == "EntityNotExist.Role":
            return None
        raise
    return ExistingRole(
        str(role.arn), str(role.description or ""), str(role.assume_role_policy_document)
    )


def decide(
    role: ExistingRole | None,
    *,
    role_name: str,
    app_uid: str,
    registry_uid: str,
    exclusive: bool,
    description: str,
) -> PullRoleState:
    """What the role needs, from the role as read: pure, so every trust shape is testable."""
    principal = ram_policy.sae_principal(app_uid)
    wanted_text = f"trusted by {principal}" + (" only" if exclusive else "")

    def state(
        action: RoleAction, wanted: ram_policy.Document | None, row: PlanRow
    ) -> PullRoleState:
        return PullRoleState(
            role_name=role_name,
            role_arn=role.arn if role else f"acs:ram::{registry_uid}:role/{role_name}",
            app_uid=app_uid,
            registry_uid=registry_uid,
            exclusive=exclusive,
            description=description,
            action=action,
            trust_now=role.trust if role else None,
            trust_wanted=ram_policy.to_text(wanted) if wanted is not None else None,
            rows=(row,),
        )

    def row(now: str, action: str, reason: str = "") -> PlanRow:
        return PlanRow(NAME, "B", role_name, now, wanted_text, action, reason)

    if role is None:
        return state("create", ram_policy.sae_trust_policy(app_uid), row("missing", "create"))
    current = ram_policy.parse(role.trust)
    now = _describe(current)
    if exclusive:
        wanted = ram_policy.sae_trust_policy(app_uid)
        if ram_policy.same_document(current, wanted):
            return state("none", None, row(now, OK))
        return state(
            "replace",
            wanted,
            row(
                now, "update trust",
                "access.exclusive_trust is true: the whole trust policy is replaced, so every "
                f"principal but {principal} loses the right to assume {role_name}.",
            ),
        )  # fmt: skip
    verdict = ram_policy.sae_trust_verdict(current, app_uid)
    if verdict == "allowed":
        return state("none", None, row(now, OK))
    if verdict == "denied":
        return state(
            "blocked",
            None,
            row(
                f"denies {principal}", BLOCKED,
                f"The trust policy of {role_name} has a Deny statement naming {principal}, so "
                f"SAE of account {app_uid} cannot assume the role, and no Allow can override a "
                f"Deny. Remove that statement (RAM console > Roles > {role_name} > Trust "
                "Policy), or set access.exclusive_trust: true to replace the whole trust policy.",
            ),
        )  # fmt: skip
    kept = len(ram_policy.statements(current))
    return state(
        "merge",
        ram_policy.merge_sae_trust(current, app_uid),
        row(
            now, "update trust",
            f"One statement trusting {principal} is appended after the existing {kept}, which "
            "are kept exactly as written.",
        ),
    )  # fmt: skip


def _describe(document: ram_policy.Document) -> str:
    principals = sorted(value for _, value in ram_policy.allowed_principals(document))
    return f"trusts {', '.join(principals)}" if principals else "trusts nobody"


# -- writing -------------------------------------------------------------------------------------


def _apply(ram: Any, state: PullRoleState, *, converge: bool) -> list[Change]:
    if state.action == "create":
        assert state.trust_wanted is not None
        request = ram_models.CreateRoleRequest(
            role_name=state.role_name,
            assume_role_policy_document=state.trust_wanted,
            description=state.description,
        )
        try:
            call("ram:CreateRole", ram.create_role, request)
        except CloudError as exc:
            if exc.code != "EntityAlreadyExists.Role" or not converge:
                raise
            return _converge(ram, state)
        return [Change("B", RESOURCE_TYPE, state.role_name, "created", state.role_arn)]
    if state.action in ("merge", "replace"):
        assert state.trust_wanted is not None
        _update_trust(ram, state.role_name, state.trust_wanted)
        if state.action == "merge":
            added = ram_policy.to_text(ram_policy.sae_trust_statement(state.app_uid))
            return [Change("B", RESOURCE_TYPE, state.role_name, "trust-merged", added)]
        return [
            Change("B", RESOURCE_TYPE, state.role_name, "trust-replaced", state.trust_now or "")
        ]
    return []


def _converge(ram: Any, state: PullRoleState) -> list[Change]:
    """CreateRole met an existing role: our own create whose reply was lost (then the role is
    exactly what we asked for, and it is ours), or someone else's (then merge into it)."""
    role = _read(ram, state.role_name)
    if (
        role is not None
        and state.trust_wanted is not None
        and role.description == state.description
        and ram_policy.same_document(
            ram_policy.parse(role.trust), ram_policy.parse(state.trust_wanted)
        )
    ):
        return [Change("B", RESOURCE_TYPE, state.role_name, "created", role.arn)]
    fresh = decide(
        role,
        role_name=state.role_name,
        app_uid=state.app_uid,
        registry_uid=state.registry_uid,
        exclusive=state.exclusive,
        description=state.description,
    )
    return _apply(ram, fresh, converge=False)


def _update_trust(ram: Any, role_name: str, document: str) -> None:
    request = ram_models.UpdateRoleRequest(
        role_name=role_name, new_assume_role_policy_document=document
    )
    call("ram:UpdateRole", ram.update_role, request)


# -- teardown ------------------------------------------------------------------------------------


def _delete(ram: Any, change: Change) -> list[Change]:
    try:
        call(
            "ram:DeleteRole",
            ram.delete_role,
            ram_models.DeleteRoleRequest(role_name=change.resource_id),
        )
    except CloudError as exc:
        if exc.code == "EntityNotExist.Role":
            return []
        raise
    return [Change("B", RESOURCE_TYPE, change.resource_id, "deleted", change.detail)]


def _unmerge(ram: Any, change: Change) -> list[Change]:
    """Take out the one statement we appended; leave the rest, and any later edits, alone."""
    role = _read(ram, change.resource_id)
    if role is None:
        return []
    trimmed = ram_policy.without_statement(ram_policy.parse(role.trust), json.loads(change.detail))
    if trimmed is None or not ram_policy.statements(trimmed):
        return []
    _update_trust(ram, change.resource_id, ram_policy.to_text(trimmed))
    return [Change("B", RESOURCE_TYPE, change.resource_id, "trust-unmerged", change.detail)]


def _restore(ram: Any, change: Change) -> list[Change]:
    """Put back the trust policy that access.exclusive_trust replaced."""
    role = _read(ram, change.resource_id)
    if role is None or not change.detail:
        return []
    before = ram_policy.parse(change.detail)
    if ram_policy.same_document(ram_policy.parse(role.trust), before):
        return []
    _update_trust(ram, change.resource_id, change.detail)
    return [Change("B", RESOURCE_TYPE, change.resource_id, "trust-restored", "")]


_UNDO = {"created": _delete, "trust-merged": _unmerge, "trust-replaced": _restore}


# -- the step ------------------------------------------------------------------------------------


class PullRoleStep(Step[PullRoleState, Applied]):
    """The role SAE of account A assumes in account B (access method ram-role)."""

    name = NAME
    task_name = "pull-role"
    fleet_wide = True
    account = "B"
    reverses = frozenset(
        {
            (RESOURCE_TYPE, "created"),
            (RESOURCE_TYPE, "trust-merged"),
            (RESOURCE_TYPE, "trust-replaced"),
        }
    )

    def wanted(self, spec: DeploySpec, accounts: Accounts) -> bool:
        return spec.access.method == "ram-role"

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        role = arns.ram_role(spec.role_name)
        return Needs(
            reads=grant(role, "ram:GetRole"),
            writes=grant(role, "ram:CreateRole", "ram:UpdateRole"),
            removes=grant(role, "ram:GetRole", "ram:UpdateRole", "ram:DeleteRole"),
        )

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> PullRoleState:
        return inspect_pull_role(
            accounts.registry, spec, app_uid=accounts.app_uid, registry_uid=accounts.registry_uid
        )

    def apply(self, accounts: Accounts, state: PullRoleState) -> Applied:
        return Applied(tuple(apply_pull_role(accounts.registry, state)))

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return remove_pull_role(accounts.registry, changes)

    def intents(self, state: PullRoleState) -> list[Intent]:
        name = state.role_name
        statement = ram_policy.to_text(ram_policy.sae_trust_statement(state.app_uid))
        if state.action == "create":
            evidence = {"description": state.description, "statement": statement}
            return [Intent(Change("B", RESOURCE_TYPE, name, "created", state.role_arn), evidence)]
        if state.action == "merge":
            return [Intent(Change("B", RESOURCE_TYPE, name, "trust-merged", statement))]
        if state.action == "replace":
            replaced = Change("B", RESOURCE_TYPE, name, "trust-replaced", state.trust_now or "")
            return [Intent(replaced)]
        return []

    def confirm(self, accounts: Accounts, intent: Intent) -> list[Change]:
        """A created role is ours when it carries our description; a role someone else made in
        between got our statement merged in instead (CreateRole's convergence), so that is what
        to take out."""
        change = intent.change
        if change.action != "created":
            return [change]
        role = _read(accounts.registry.get_client("ram"), change.resource_id)
        if role is None:
            return []
        if role.description == intent.evidence["description"]:
            return [change]
        return [replace(change, action="trust-merged", detail=intent.evidence["statement"])]


STEP = PullRoleStep()
