"""Write-ahead intents for the ledger (crossdeploy/ledger.py): what a step is about to write, and,
at teardown, what of it is really there.

`intents(*states)` turns inspected states into the Intents of their apply, before it runs:

    role       create, trust merge, trust replace    ram.role created / trust-merged / -replaced
    policy     create, new default version, attach   ram.policy, ram.policy-version, ram.attachment
    whitelist  endpoint on, ACL entries               cr.internet-endpoint, cr.acl-entry
    secret     create                                 sae.secret
    app        create                                 sae.application

(A secret update or an app deploy is not undone by teardown, so it needs no intent.)

`confirm(accounts, intents)` is teardown's answer to an intent no run confirmed: the Change to
reverse, with the id the cloud assigned, when the resource is there and ours (our description on
a role or policy, our document as the new default version, our secret or app name in our
namespace); nothing when it is gone or never made, so teardown stays idempotent. An attachment,
a trust statement, an ACL entry or a switched-on endpoint are passed on as they are: the
remove_* functions already touch only what is there (an intent is only made when the inspection
found it absent). Reversing is left to those remove_* functions.

Not covered: the ACL entry the registry itself adds when an endpoint is switched on from an empty
ACL (its address is only known after the write; the endpoint is switched off again, though), and
a policy someone else created between our inspection and our CreatePolicy (our document then went
in as a new version of theirs, and the version before it is unknown).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from crossdeploy import ram_policy
from crossdeploy.cloud import CloudError, call
from crossdeploy.ledger import APP, SECRET, Intent
from crossdeploy.plan import Change
from crossdeploy.planner import Accounts
from tasks import pull_policy, pull_role, whitelist
from tasks.application import ApplicationState, find_application
from tasks.pull_policy import PullPolicyState
from tasks.pull_policy import _default_version as default_version  # the steps' own readers  # noqa: PLC2701 (lead removes, issue 16 item 1)
from tasks.pull_role import PullRoleState
from tasks.pull_role import _read as read_role  # noqa: PLC2701 (lead removes, issue 16 item 1)
from tasks.registry_secret import SECRET_TYPE, RegistrySecretState
from tasks.registry_secret import _find as find_secret  # noqa: PLC2701 (lead removes, issue 16 item 1)
from tasks.whitelist import WhitelistState
from tasks.whitelist import _entry_id as entry_id  # noqa: PLC2701 (lead removes, issue 16 item 1)

UNKNOWN = "?"
"""An id the cloud assigns with the write (policy version, secret id, app id)."""


def intents(*states: object) -> list[Intent]:
    """The writes applying these inspected states will make, in order (None states skipped)."""
    out: list[Intent] = []
    for state in states:
        if isinstance(state, PullRoleState):
            out += _role(state)
        elif isinstance(state, PullPolicyState):
            out += _policy(state)
        elif isinstance(state, WhitelistState):
            out += _whitelist(state)
        elif isinstance(state, RegistrySecretState) and state.action == "create":
            change = Change("A", SECRET, f"{state.namespace_id}/{UNKNOWN}", "created")
            out.append(Intent(change, {"name": state.secret_name}))
        elif isinstance(state, ApplicationState) and state.app_id is None:
            where = f"{state.app_name} in {state.namespace_id}"
            evidence = {"name": state.app_name, "namespace": state.namespace_id}
            out.append(Intent(Change("A", APP, UNKNOWN, "created", where), evidence))
    return out


def confirm(accounts: Accounts, pending: list[Intent]) -> list[Change]:
    """The Changes teardown reverses for intents no run confirmed (see the module docstring)."""
    out: list[Change] = []
    for intent in pending:
        change, evidence = intent.change, intent.evidence
        kind = change.resource_type
        if kind == pull_role.RESOURCE_TYPE and change.action == "created":
            out += _own_role(accounts.registry.get_client("ram"), change, evidence)
        elif kind == pull_policy.POLICY:
            out += _own_policy(accounts.registry.get_client("ram"), change, evidence)
        elif kind == pull_policy.VERSION:
            out += _own_version(accounts.registry.get_client("ram"), change, evidence)
        elif kind == SECRET:
            out += _own_secret(accounts.app.get_client("sae"), change, evidence)
        elif kind == APP:
            found = find_application(
                accounts.app.get_client("sae"), evidence["name"], evidence["namespace"]
            )
            out += [replace(change, resource_id=found[0])] if found else []
        else:
            out.append(change)
    return out


# -- intents -------------------------------------------------------------------------------------


def _role(state: PullRoleState) -> list[Intent]:
    name, kind = state.role_name, pull_role.RESOURCE_TYPE
    statement = ram_policy.to_text(ram_policy.sae_trust_statement(state.app_uid))
    if state.action == "create":
        evidence = {"description": state.description, "statement": statement}
        return [Intent(Change("B", kind, name, "created", state.role_arn), evidence)]
    if state.action == "merge":
        return [Intent(Change("B", kind, name, "trust-merged", statement))]
    if state.action == "replace":
        return [Intent(Change("B", kind, name, "trust-replaced", state.trust_now or ""))]
    return []


def _policy(state: PullPolicyState) -> list[Intent]:
    if state.blocked:
        return []
    name = state.policy_name
    out = []
    if not state.exists:
        evidence = {"description": state.description}
        out.append(Intent(Change("B", pull_policy.POLICY, name, "created", "v1"), evidence))
    elif not state.up_to_date:
        change = Change(
            "B", pull_policy.VERSION, f"{name}/{UNKNOWN}", "created", state.default_version or ""
        )
        out.append(Intent(change, {"document": state.document}))
    if not state.attached:
        attachment = f"{state.role_name}/{name}"
        out.append(Intent(Change("B", pull_policy.ATTACHMENT, attachment, "attached", "Custom")))
    return out


def _whitelist(state: WhitelistState) -> list[Intent]:
    if state.instance_id is None:
        return []
    out = []
    if state.enable:
        out.append(Intent(Change("B", whitelist.ENDPOINT, state.instance_id, "enabled")))
    for entry in state.add:
        resource = entry_id(state.instance_id, entry)
        out.append(Intent(Change("B", whitelist.ENTRY, resource, "added", state.comment)))
    return out


# -- confirming ----------------------------------------------------------------------------------


def _own_role(ram: Any, change: Change, evidence: dict[str, str]) -> list[Change]:
    """Ours when it carries our description; a role someone else made in between got our
    statement merged in instead (CreateRole's convergence), so that is what to take out."""
    role = read_role(ram, change.resource_id)
    if role is None:
        return []
    if role.description == evidence["description"]:
        return [change]
    return [replace(change, action="trust-merged", detail=evidence["statement"])]


def _own_policy(ram: Any, change: Change, evidence: dict[str, str]) -> list[Change]:
    if change.action != "created":
        return [change]
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
    current = default_version(ram, name)
    if current is None or current[0] == change.detail:
        return []
    wanted = ram_policy.parse(evidence["document"])
    if not ram_policy.same_document(ram_policy.parse(current[1]), wanted):
        return []
    return [replace(change, resource_id=f"{name}/{current[0]}")]


def _own_secret(sae: Any, change: Change, evidence: dict[str, str]) -> list[Change]:
    namespace_id = change.resource_id.rpartition("/")[0]
    found = find_secret(sae, namespace_id, evidence["name"])
    if found is None or found[1] != SECRET_TYPE:
        return []
    return [replace(change, resource_id=f"{namespace_id}/{found[0]}")]
