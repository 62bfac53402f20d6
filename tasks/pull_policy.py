"""Account B: the custom policy that lets the pull role pull this one image, attached to the role.

The policy grants exactly the five pull actions (`ram_policy.PULL_ACTIONS`), each on the resource
ACR authenticates it on: the token on `*`, the rest on the image's instance and repository. A
policy whose default version says anything else (such as one an earlier version of this tool
wrote, with the token scoped to the instance) gets a new default version (the oldest non-default
one is rotated out at RAM's limit of five), so drift is repaired without deleting what others may
reference. Teardown detaches what it attached, deletes the policy only if this tool created it,
and otherwise takes back the version it added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from crossdeploy import ram_policy
from crossdeploy.cloud import CloudError, call, write_once
from crossdeploy.ledger import UNASSIGNED, Intent
from crossdeploy.permissions import Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, Change, PlanRow
from crossdeploy.spec import DeploySpec
from tasks import image, pull_role
from tasks.step import Accounts, Applied, Inspection, Step

NAME = "policy"
POLICY = "ram.policy"
VERSION = "ram.policy-version"
ATTACHMENT = "ram.attachment"
MAX_VERSIONS = 5
"""RAM keeps at most five versions of a custom policy (CreatePolicyVersion rotates the oldest
non-default out), so an older version we created is gone and needs no ledger entry."""
ROTATE = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
_GONE = {"EntityNotExist.Role", "EntityNotExist.Policy", "EntityNotExist.Role.Policy"}


@dataclass(frozen=True)
class PullPolicyState:
    policy_name: str
    role_name: str
    document: str
    """The wanted policy document (JSON text)."""
    description: str
    exists: bool
    default_version: str | None
    """The policy's default version as read; None when missing."""
    up_to_date: bool
    """The default version's document means the same as `document`."""
    attached: bool
    blocked: bool
    rows: tuple[PlanRow, ...]


def inspect_pull_policy(
    creds_b: Any,
    spec: DeploySpec,
    *,
    app_uid: str,
    registry_uid: str,
    instance_id: str | None,
) -> PullPolicyState:
    """Compare the policy and its attachment with the wanted ones. Reads only.

    `instance_id` is the image's Enterprise instance (`ImageState.instance_id`), None for
    Personal Edition.
    """
    ref = spec.image.ref
    name, role = spec.policy_name, spec.role_name
    wanted_text = f"{len(ram_policy.PULL_ACTIONS)} cr:* pull actions on {ref.repository}"
    description = ram_policy.managed_description(spec.app.name, app_uid)
    if ref.edition == "enterprise" and not instance_id:
        row = PlanRow(
            NAME, "B", name, "not checked", wanted_text, BLOCKED,
            "The policy is scoped to the image's ACR instance, which the image step could not "
            "find; fix the image row first.",
        )  # fmt: skip
        return PullPolicyState(name, role, "", description, False, None, False, False, True, (row,))
    document = ram_policy.pull_policy(
        registry_uid, instance_id=instance_id, namespace=ref.namespace, repo=ref.repo
    )
    ram = creds_b.get_client("ram")
    current = _default_version(ram, name)
    # A policy that does not exist is attached to nothing: no need to list the role's policies.
    attached = current is not None and _attached(ram, role, name)
    up_to_date = current is not None and ram_policy.same_document(
        ram_policy.parse(current[1]), document
    )
    parts = (["create"] if current is None else [] if up_to_date else ["new version"]) + (
        [] if attached else ["attach"]
    )
    if current is None:
        now = "missing"
    else:
        content = "as wanted" if up_to_date else "grants something else"
        now = f"{current[0]} {content}, {'attached' if attached else 'not attached'}"
    reason = _drift_reason(current) if current is not None and not up_to_date else ""
    row = PlanRow(
        NAME, "B", name, now, f"{wanted_text}, attached to {role}",
        " + ".join(parts) if parts else OK, reason,
    )  # fmt: skip
    return PullPolicyState(
        policy_name=name,
        role_name=role,
        document=ram_policy.to_text(document),
        description=description,
        exists=current is not None,
        default_version=current[0] if current else None,
        up_to_date=up_to_date,
        attached=attached,
        blocked=False,
        rows=(row,),
    )


def _drift_reason(current: tuple[str, str]) -> str:
    """Why the default version must be replaced, and what that fixes."""
    version, text = current
    kept = "the old versions stay until RAM's limit of five rotates them out"
    if not ram_policy.grants_login(ram_policy.parse(text)):
        action, resource = ram_policy.LOGIN_ACTION, ram_policy.LOGIN_RESOURCE
        return (
            f'The default version {version} does not allow {action} on "Resource": "{resource}", '
            "the only resource ACR checks it on, so SAE gets no registry token and the pull "
            "fails (NoPrivilege). Fix: deploy again: a new default version grants it in its own "
            f'statement ({kept}); or give {action} its own statement with "Resource": '
            f'"{resource}" by hand.'
        )
    return (
        f"The default version {version} differs from the pull policy; a new default version "
        f"replaces it ({kept})."
    )


def apply_pull_policy(creds_b: Any, state: PullPolicyState) -> list[Change]:
    """Create the policy or a new default version, and attach it, only as `state` says."""
    if state.blocked:
        return []
    ram = creds_b.get_client("ram")
    changes: list[Change] = []
    if not state.exists:
        changes += _create(ram, state)
    elif not state.up_to_date:
        changes.append(_new_version(ram, state.policy_name, state.document, state.default_version))
    if not state.attached:
        changes.append(_attach(ram, state))
    return changes


def remove_pull_policy(creds_b: Any, changes: list[Change]) -> list[Change]:
    """Undo this step's changes (others in `changes` are ignored): detach, then versions, then
    the policy itself."""
    ram = creds_b.get_client("ram")
    mine = list(reversed(changes))
    created = {c.resource_id for c in mine if c.resource_type == POLICY and c.action == "created"}
    undone: list[Change] = []
    for change in mine:
        if change.resource_type == ATTACHMENT and change.action == "attached":
            undone += _detach(ram, change)
    for change in mine:
        ours = change.resource_type == VERSION and change.action == "created"
        if ours and change.resource_id.partition("/")[0] not in created:
            undone += _drop_version(ram, change)
    for name in [
        c.resource_id for c in mine if c.resource_type == POLICY and c.action == "created"
    ]:
        undone += _delete(ram, name)
    return undone


# -- reading -------------------------------------------------------------------------------------


def _default_version(ram: Any, name: str) -> tuple[str, str] | None:
    """(version id, document) of the custom policy's default version; None when missing."""
    request = ram_models.GetPolicyRequest(policy_name=name, policy_type="Custom")
    try:
        body = call("ram:GetPolicy", ram.get_policy, request).body
    except CloudError as exc:
        if exc.code == "EntityNotExist.Policy":
            return None
        raise
    version = body.default_policy_version
    return str(version.version_id), str(version.policy_document)


def _attached(ram: Any, role: str, name: str) -> bool:
    request = ram_models.ListPoliciesForRoleRequest(role_name=role)
    try:
        body = call("ram:ListPoliciesForRole", ram.list_policies_for_role, request).body
    except CloudError as exc:
        if exc.code == "EntityNotExist.Role":
            return False
        raise
    policies = body.policies.policy if body.policies else None
    return any(
        p.policy_type == "Custom" and str(p.policy_name).lower() == name.lower()
        for p in policies or []
    )


# -- writing -------------------------------------------------------------------------------------


def _create(ram: Any, state: PullPolicyState) -> list[Change]:
    request = ram_models.CreatePolicyRequest(
        policy_name=state.policy_name,
        policy_document=state.document,
        description=state.description,
    )
    try:
        call("ram:CreatePolicy", ram.create_policy, request)
    except CloudError as exc:
        if exc.code != "EntityAlreadyExists.Policy":
            raise
        return _converge(ram, state)
    return [Change("B", POLICY, state.policy_name, "created", "v1")]


def _converge(ram: Any, state: PullPolicyState) -> list[Change]:
    """CreatePolicy met an existing policy: our own create whose reply was lost (exactly what we
    asked for, with our description: ours), or someone else's (then repair its document)."""
    request = ram_models.GetPolicyRequest(policy_name=state.policy_name, policy_type="Custom")
    body = call("ram:GetPolicy", ram.get_policy, request).body
    version = str(body.default_policy_version.version_id)
    same = ram_policy.same_document(
        ram_policy.parse(str(body.default_policy_version.policy_document)),
        ram_policy.parse(state.document),
    )
    if same and body.policy.description == state.description:
        return [Change("B", POLICY, state.policy_name, "created", version)]
    if same:
        return []
    return [_new_version(ram, state.policy_name, state.document, version)]


def _new_version(ram: Any, name: str, document: str, previous: str | None) -> Change:
    request = ram_models.CreatePolicyVersionRequest(
        policy_name=name, policy_document=document, set_as_default=True, rotate_strategy=ROTATE
    )

    def create() -> str:
        return str(ram.create_policy_version(request).body.policy_version.version_id)

    def landed() -> str | None:
        """A lost reply: the default is already a new version saying exactly this."""
        current = _default_version(ram, name)
        wanted = ram_policy.parse(document)
        if (
            current
            and current[0] != previous
            and ram_policy.same_document(ram_policy.parse(current[1]), wanted)
        ):
            return current[0]
        return None

    version = write_once("ram:CreatePolicyVersion", create, landed=landed)
    return Change("B", VERSION, f"{name}/{version}", "created", previous or "")


def _attach(ram: Any, state: PullPolicyState) -> Change:
    request = ram_models.AttachPolicyToRoleRequest(
        policy_type="Custom", policy_name=state.policy_name, role_name=state.role_name
    )
    try:
        call("ram:AttachPolicyToRole", ram.attach_policy_to_role, request)
    except CloudError as exc:
        # Not attached when inspected: a lost reply of this very call attached it.
        if exc.code != "EntityAlreadyExists.Role.Policy":
            raise
    return Change("B", ATTACHMENT, f"{state.role_name}/{state.policy_name}", "attached", "Custom")


# -- teardown ------------------------------------------------------------------------------------


def _detach(ram: Any, change: Change) -> list[Change]:
    role, _, name = change.resource_id.partition("/")
    request = ram_models.DetachPolicyFromRoleRequest(
        policy_type="Custom", policy_name=name, role_name=role
    )
    try:
        call("ram:DetachPolicyFromRole", ram.detach_policy_from_role, request)
    except CloudError as exc:
        if exc.code in _GONE:
            return []
        raise
    return [Change("B", ATTACHMENT, change.resource_id, "detached", "Custom")]


def _drop_version(ram: Any, change: Change) -> list[Change]:
    """Make the version that was default before ours the default again, then delete ours."""
    name, _, version = change.resource_id.partition("/")
    current = _default_version(ram, name)
    if current is None:
        return []
    try:
        if current[0] == version:
            if not change.detail:
                return []
            call(
                "ram:SetDefaultPolicyVersion",
                ram.set_default_policy_version,
                ram_models.SetDefaultPolicyVersionRequest(
                    policy_name=name, version_id=change.detail
                ),
            )
        call(
            "ram:DeletePolicyVersion",
            ram.delete_policy_version,
            ram_models.DeletePolicyVersionRequest(policy_name=name, version_id=version),
        )
    except CloudError as exc:
        # The previous default was rotated out (ours stays), or ours is already gone.
        if exc.code in ("EntityNotExist.Policy", "EntityNotExist.Policy.Version"):
            return []
        raise
    return [Change("B", VERSION, change.resource_id, "deleted", change.detail)]


def _delete(ram: Any, name: str) -> list[Change]:
    request = ram_models.DeletePolicyRequest(policy_name=name, cascading_delete=True)
    try:
        call("ram:DeletePolicy", ram.delete_policy, request)
    except CloudError as exc:
        if exc.code == "EntityNotExist.Policy":
            return []
        raise
    return [Change("B", POLICY, name, "deleted", "")]


# -- the step ------------------------------------------------------------------------------------


class PullPolicyStep(Step[PullPolicyState, Applied]):
    """The pull policy in account B, attached to the pull role (access method ram-role)."""

    name = NAME
    task_name = "pull-policy"
    fleet_wide = True
    account = "B"
    needs = (image.NAME,)
    after = (pull_role.NAME,)
    reverses = frozenset({(ATTACHMENT, "attached"), (VERSION, "created"), (POLICY, "created")})
    compacted_by = frozenset({POLICY, VERSION})

    def wanted(self, spec: DeploySpec, accounts: Accounts) -> bool:
        return spec.access.method == "ram-role"

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        """Attaching and detaching are checked on the role and on the policy (RAM)."""
        role, policy = arns.ram_role(spec.role_name), arns.ram_policy(spec.policy_name)
        versions = ("ram:SetDefaultPolicyVersion", "ram:DeletePolicyVersion", "ram:DeletePolicy")
        return Needs(
            reads=grant(policy, "ram:GetPolicy") + grant(role, "ram:ListPoliciesForRole"),
            writes=grant(policy, "ram:CreatePolicy", "ram:CreatePolicyVersion")
            + grant(role, "ram:AttachPolicyToRole")
            + grant(policy, "ram:AttachPolicyToRole"),
            removes=grant(policy, "ram:GetPolicy", "ram:DetachPolicyFromRole", *versions)
            + grant(role, "ram:DetachPolicyFromRole"),
        )

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> PullPolicyState:
        return inspect_pull_policy(
            accounts.registry,
            spec,
            app_uid=accounts.app_uid,
            registry_uid=accounts.registry_uid,
            instance_id=found.of(image.STEP).instance_id,
        )

    def apply(self, accounts: Accounts, state: PullPolicyState) -> Applied:
        return Applied(tuple(apply_pull_policy(accounts.registry, state)))

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return remove_pull_policy(accounts.registry, changes)

    def intents(self, state: PullPolicyState) -> list[Intent]:
        if state.blocked:
            return []
        name = state.policy_name
        out = []
        if not state.exists:
            evidence = {"description": state.description}
            out.append(Intent(Change("B", POLICY, name, "created", "v1"), evidence))
        elif not state.up_to_date:
            version = Change(
                "B", VERSION, f"{name}/{UNASSIGNED}", "created", state.default_version or ""
            )
            out.append(Intent(version, {"document": state.document}))
        if not state.attached:
            attachment = f"{state.role_name}/{name}"
            out.append(Intent(Change("B", ATTACHMENT, attachment, "attached", "Custom")))
        return out

    def confirm(self, accounts: Accounts, intent: Intent) -> list[Change]:
        ram = accounts.registry.get_client("ram")
        change = intent.change
        if change.resource_type == POLICY and change.action == "created":
            return _own_policy(ram, change, intent.evidence)
        if change.resource_type == VERSION:
            return _own_version(ram, change, intent.evidence)
        return [change]

    def needless(self, kept: Sequence[Change]) -> set[Change]:
        """Every version of a policy we created (deleting it takes them), and all but the newest
        MAX_VERSIONS of another's (RAM rotated the older ones out)."""
        ours = {c.resource_id for c in kept if c.resource_type == POLICY}
        versions: dict[str, list[Change]] = {}
        for change in kept:
            if change.resource_type == VERSION:
                versions.setdefault(change.resource_id.partition("/")[0], []).append(change)
        out: set[Change] = set()
        for policy, made in versions.items():
            keep = 0 if policy in ours else MAX_VERSIONS
            out.update(made[: max(0, len(made) - keep)])
        return out


def _own_policy(ram: Any, change: Change, evidence: dict[str, str]) -> list[Change]:
    """Ours when it carries our description."""
    request = ram_models.GetPolicyRequest(policy_name=change.resource_id, policy_type="Custom")
    try:
        body = call("ram:GetPolicy", ram.get_policy, request).body
    except CloudError as exc:
        if exc.code == "EntityNotExist.Policy":
            return []
        raise
    return [change] if body.policy.description == evidence["description"] else []


def _own_version(ram: Any, change: Change, evidence: dict[str, str]) -> list[Change]:
    """Ours when the default is no longer the one inspected and says exactly our document."""
    name = change.resource_id.partition("/")[0]
    current = _default_version(ram, name)
    if current is None or current[0] == change.detail:
        return []
    wanted = ram_policy.parse(evidence["document"])
    if not ram_policy.same_document(ram_policy.parse(current[1]), wanted):
        return []
    return [replace(change, resource_id=f"{name}/{current[0]}")]


STEP = PullPolicyStep()
