"""When a deploy fails: say where, show the instances, find the root cause, roll back.

The root cause is found the honest way: by re-checking the whole pull path now (the same
inspections the plan runs) and naming the first step that is no longer as it must be, e.g.
"EIP 47.96.10.20 is not in the internet ACL of cri-demo". SAE's own message (an `i/o timeout`, a
`401 Unauthorized`) says what happened; the re-check says why.
"""

from __future__ import annotations

from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from crossdeploy.cloud import CloudError, call
from crossdeploy.plan import PlanRow
from crossdeploy.planner import Accounts, Inspection, inspect_all
from crossdeploy.spec import DeploySpec, NetworkSpec
from tasks.change_order import ChangeOrderOutcome, follow_change_order
from tasks.verify import instance_statuses


def _instances_line(statuses: dict[str, int]) -> str:
    if not statuses:
        return "Instances: none"
    parts = (f"{count} × {status}" for status, count in sorted(statuses.items()))  # noqa: RUF001
    return "Instances: " + ", ".join(parts)


def _explain(row: PlanRow) -> str:
    if row.reason:
        return f"{row.step} ({row.resource}): {row.reason}"
    return (
        f"{row.step} ({row.resource}) is now {row.now!r} but must be {row.wanted!r}; "
        f"a new deploy would {row.action} it."
    )


def _whitelist_cause(found: Inspection) -> str | None:
    """The registry does not admit the app's network path now (UX wording), or None."""
    state, network = found.whitelist, found.network
    instance = state.instance_id or "the registry"
    if state.enable:
        return (
            f"the internet endpoint of {instance} is disabled, so no pull over the public domain "
            "can reach it. Fix: enable it (network.whitelist: auto does), or pull over the VPC "
            "domain."
        )
    if state.add:
        entries = ", ".join(state.add)
        missing = ", ".join(entry.removesuffix("/32") for entry in state.add)
        if len(network.egress_ips) > 1:
            which = "EIP {} is" if len(state.add) == 1 else "EIPs {} are"
            return (
                f"{which.format(missing)} not in the internet ACL of {instance}, and the egress of "
                f"{network.vswitch_id} leaves from any of {', '.join(network.egress_ips)} (one "
                f"SNAT entry). Fix: set network.whitelist: auto (adds {entries}), or add them by "
                "hand."
            )
        return (
            f"EIP {missing}, the egress of {network.vswitch_id}, is not in the internet "
            f"ACL of {instance}. Fix: set network.whitelist: auto (adds {entries}), or add it by "
            "hand."
        )
    if state.settling:
        return (
            f"the internet endpoint of {instance} is {state.settling}, not RUNNING yet, so pulls "
            "over the public domain do not get through. Fix: wait until it is RUNNING; a new "
            "deploy waits for it."
        )
    return None


def root_cause(spec: DeploySpec, accounts: Accounts) -> str:
    """Re-check every step of the pull path; the first one out of place is the cause.

    The whitelist is re-checked even when the spec leaves it unmanaged: it is still on the path.
    """
    checked = spec
    if spec.network.whitelist == "none":
        checked = spec.model_copy(update={"network": NetworkSpec(whitelist="auto")})
    try:
        found = inspect_all(checked, accounts)
    except CloudError as exc:
        return f"Root cause: the re-check itself failed ({exc})."
    blocked = [r for r in found.rows if r.blocked]
    if blocked:
        return "Root cause (re-checked now): " + _explain(blocked[0])
    for row in found.rows:
        if row.step == "whitelist" and (text := _whitelist_cause(found)) is not None:
            return "Root cause (re-checked now): " + text
        if not row.changes or row.step == "app":
            continue
        return "Root cause (re-checked now): " + _explain(row)
    if found.whitelist.dns_step:
        return (
            "Root cause (re-checked now): every step of the pull path the run can check is in "
            f"place; one it cannot check remains: {found.whitelist.dns_step}"
        )
    return (
        "Root cause (re-checked now): every step of the pull path is in place now; the task "
        "message above is the best evidence (a transient failure, or a change that has since "
        "been undone)."
    )


def diagnose(spec: DeploySpec, accounts: Accounts, outcome: ChangeOrderOutcome, app_id: str) -> str:
    """The failed change order, the instances and the root cause, as a person reads them."""
    lines = [outcome.summary()]
    try:
        lines.append(_instances_line(instance_statuses(accounts.app, app_id)))
    except CloudError as exc:
        lines.append(f"Instances: unknown ({exc.code or 'network error'})")
    if not outcome.timed_out:
        lines.append(root_cause(spec, accounts))
    return "\n".join(lines)


def roll_back(spec: DeploySpec, accounts: Accounts, app_id: str) -> str:
    """Return to the newest recorded (successful) version; say what happened."""
    sae: Any = accounts.app.get_client("sae")
    versions = call(
        "sae:ListAppVersions",
        sae.list_app_versions,
        sae_models.ListAppVersionsRequest(app_id=app_id),
    ).body.data
    if not versions:
        return "No earlier version to roll back to (the app has never run); it is left as it is."
    target = versions[0]
    try:
        started = call(
            "sae:RollbackApplication",
            sae.rollback_application,
            sae_models.RollbackApplicationRequest(app_id=app_id, version_id=target.id),
        ).body.data
    except CloudError as exc:
        return f"Rollback to version {target.id} was refused: {exc}"
    done = follow_change_order(
        accounts.app,
        started.change_order_id,
        timeout_seconds=spec.rollout.timeout_seconds,
        region=spec.app.region,
        confirm=spec.rollout.confirm,
    )
    order = f"change order {started.change_order_id[:8]}…"
    if done.succeeded:
        return (
            f"Rolled back to version {target.id} (image {target.build_package_url}): "
            f"{order} succeeded."
        )
    return (
        f"Rollback to version {target.id} (image {target.build_package_url}) did not land: "
        f"{order} ended {done.state}."
    )
