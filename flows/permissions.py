"""The operator's permissions: the policy each account's identity needs for a spec, and the
preflight that checks the identity's own policies before anything is written.

Both come from the steps' declarations (`Step.permissions`), so what `crossdeploy permissions`
prints is exactly what the preflight checks. The preflight reads the identity's policies as RAM
lists them: a RAM user's own and its groups', or the assumed role's; the account's root may do
anything and is not checked. RAM's other sources (a session policy given to AssumeRole, policies
attached in a resource group's scope, control policies of a resource directory) are not visible
to an identity, so a grant through them is not seen, and a denial through them still surfaces as
the step's PermissionDeniedError.

For `plan`, what only `deploy` needs is a warning (a plan-only identity plans); for `deploy` and
`teardown`, anything missing blocks the run before its first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alibabacloud_ram20150501 import models as ram_models
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from blocks import AlibabaCloudCredentials
from crossdeploy import ram_policy
from crossdeploy.cloud import CloudError, call
from crossdeploy.permissions import Identity, Permission, Phase, missing, policy_document
from crossdeploy.plan import BLOCKED, OK, WARNING, Account, PlanRow
from crossdeploy.spec import DeploySpec
from flows.inspection import AccountError, resolve_accounts
from flows.results import RESULT_SERIALIZER, expected_failures
from flows.steps import STEPS
from tasks.step import Accounts

NAME = "permissions"
FIELDS: dict[Account, Literal["app", "registry"]] = {"A": "app", "B": "registry"}


def needed(
    specs: Sequence[DeploySpec], accounts: Accounts, phase: Phase
) -> dict[Account, list[Permission]]:
    """Every permission each account's identity needs for `phase` of these specs (one, or a
    fleet's): the steps' declarations, and reading its own policies for the preflight."""
    found: dict[Account, set[Permission]] = {"A": set(), "B": set()}
    for spec in specs:
        arns = accounts.resources(spec)
        for step in STEPS:
            if step.wanted(spec, accounts):
                needs = step.permissions(spec, arns[step.account])
                found[step.account] |= set(needs.of(phase))
    for account in found:
        found[account] |= set(Identity.of(accounts.arns[account]).own_policy_reads())
    return {account: sorted(permissions) for account, permissions in found.items()}


class PermissionsError(ValueError):
    """An identity lacks permissions the run needs; nothing was written."""


@dataclass(frozen=True)
class RequiredPermissions:
    """What `crossdeploy permissions` prints: per account, who acts and the policy it needs."""

    phase: Phase
    uids: dict[str, str]
    identities: dict[str, str]
    policies: dict[str, dict[str, Any]]


@flow(name="crossdeploy-permissions", persist_result=True, result_serializer=RESULT_SERIALIZER)
@expected_failures(AccountError)
def required_permissions(spec: DeploySpec, phase: Phase = "deploy") -> RequiredPermissions:
    """The least-privilege RAM policy each account's identity needs for `phase` of the spec."""
    accounts = resolve_accounts(spec)
    needs = needed([spec], accounts, phase)
    return RequiredPermissions(
        phase,
        {field: accounts.uids[a] for a, field in FIELDS.items()},
        {field: accounts.arns[a] for a, field in FIELDS.items()},
        {field: policy_document(needs[a]) for a, field in FIELDS.items()},
    )


@task(name="permissions", task_run_name="check permissions for {phase}", cache_policy=NO_CACHE)
def check_permissions(
    specs: Sequence[DeploySpec], accounts: Accounts, phase: Phase
) -> list[PlanRow]:
    """One row per account whose identity is not its root: OK, BLOCKED (what is missing, or
    that its policies cannot be read) or, for a plan, a WARNING for what only a deploy needs."""
    needs = needed(specs, accounts, "deploy" if phase == "plan" else phase)
    reads = needed(specs, accounts, "plan")
    rows: list[PlanRow] = []
    pairs: tuple[tuple[Account, AlibabaCloudCredentials], ...] = (
        ("A", accounts.app),
        ("B", accounts.registry),
    )
    for account, creds in pairs:
        identity = Identity.of(accounts.arns[account])
        if identity.kind not in ("user", "role"):
            continue  # the root may do anything; another kind of identity cannot be read
        try:
            documents = own_policies(creds, identity)
        except CloudError as exc:
            if exc.denied is None:
                raise
            rows.append(_unreadable(account, identity, exc))
            continue
        lacking = missing(documents, needs[account])
        blocking = phase != "plan" or any(p in reads[account] for p in lacking)
        rows.append(_row(account, identity, phase, lacking, blocking))
    return rows


def refusal(rows: list[PlanRow]) -> str:
    """The message a run blocked by the preflight ends with."""
    reasons = "\n".join(f"  {r.account}: {r.reason}" for r in rows if r.blocked)
    return f"Missing permissions; nothing was changed.\n{reasons}"


def own_policies(creds: AlibabaCloudCredentials, identity: Identity) -> list[ram_policy.Document]:
    """The permission policies RAM attaches to the identity (a user's own and its groups', or
    the role's), each as its default version."""
    ram = creds.get_client("ram")
    links: list[Any] = []
    if identity.kind == "user":
        user = identity.name
        body = call(
            "ram:ListPoliciesForUser",
            ram.list_policies_for_user,
            ram_models.ListPoliciesForUserRequest(user_name=user),
        ).body
        links += body.policies.policy if body.policies else []
        groups = call(
            "ram:ListGroupsForUser",
            ram.list_groups_for_user,
            ram_models.ListGroupsForUserRequest(user_name=user),
        ).body.groups
        for group in groups.group if groups else []:
            body = call(
                "ram:ListPoliciesForGroup",
                ram.list_policies_for_group,
                ram_models.ListPoliciesForGroupRequest(group_name=group.group_name),
            ).body
            links += body.policies.policy if body.policies else []
    else:
        body = call(
            "ram:ListPoliciesForRole",
            ram.list_policies_for_role,
            ram_models.ListPoliciesForRoleRequest(role_name=identity.name),
        ).body
        links += body.policies.policy if body.policies else []
    documents = []
    for name, kind in dict.fromkeys((str(p.policy_name), str(p.policy_type)) for p in links):
        request = ram_models.GetPolicyRequest(policy_name=name, policy_type=kind)
        version = call("ram:GetPolicy", ram.get_policy, request).body.default_policy_version
        if version is not None and version.policy_document:
            documents.append(ram_policy.parse(str(version.policy_document)))
    return documents


_HINT = "`crossdeploy permissions SPEC` prints the whole policy"


def _row(
    account: Account, identity: Identity, phase: Phase, lacking: list[Permission], blocking: bool
) -> PlanRow:
    wanted = f"what {'a deploy' if phase == 'plan' else f'a {phase}'} calls"
    if not lacking:
        return PlanRow(NAME, account, identity.arn, "granted", wanted, OK)
    listed = "; ".join(map(str, lacking))
    if not blocking:
        return PlanRow(
            NAME, account, identity.arn, f"lacks {len(lacking)} for a deploy", wanted, WARNING,
            f"This identity may plan, but a deploy would be refused: it lacks {listed}. Grant "
            f"them in account {account}'s RAM console before deploying ({_HINT}).",
        )  # fmt: skip
    return PlanRow(
        NAME, account, identity.arn, f"lacks {len(lacking)}", wanted, BLOCKED,
        f"{identity.arn} lacks {listed}. Grant them in account {account}'s RAM console "
        f"({_HINT}), then run again.",
    )  # fmt: skip


def _unreadable(account: Account, identity: Identity, error: CloudError) -> PlanRow:
    denied = error.denied
    action = (denied.action if denied else "") or error.action
    on = f" on {denied.resource}" if denied and denied.resource else ""
    return PlanRow(
        NAME, account, identity.arn, "its policies cannot be read", "readable", BLOCKED,
        f"{identity.arn} may not read its own policies ({action}{on} refused: {error.code}), so "
        "what it lacks cannot be told before a write. Grant it reading them, as the policy "
        "`crossdeploy permissions SPEC` prints does, then run again.",
    )  # fmt: skip
