"""When a deploy fails: say where, show the instances, find the root cause, roll back.

The root cause is found the honest way: by re-checking the whole pull path now (the same
inspections the plan runs) and naming the first step that is no longer as it must be, e.g.
"EIP 47.96.10.20 is not in the internet ACL of cri-demo". SAE's own message (an `i/o timeout`, a
`401 Unauthorized`) says what happened; the re-check says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from crossdeploy.cloud import CloudError, call, write_once
from crossdeploy.plan import PlanRow
from crossdeploy.spec import DeploySpec, NetworkSpec
from flows.inspection import inspect_all
from flows.steps import STEPS
from tasks import application, network, whitelist
from tasks.change_order import (
    ABORTED,
    ChangeOrderOutcome,
    abort_change_order,
    describe_order,
    follow_change_order,
)
from tasks.step import Accounts, Inspection
from tasks.verify import app_instances, count_statuses, running_images


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
    state, net = found.of(whitelist.STEP), found.of(network.STEP)
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
        if len(net.egress_ips) > 1:
            which = "EIP {} is" if len(state.add) == 1 else "EIPs {} are"
            return (
                f"{which.format(missing)} not in the internet ACL of {instance}, and the egress of "
                f"{net.vswitch_id} leaves from any of {', '.join(net.egress_ips)} (one "
                f"SNAT entry). Fix: set network.whitelist: auto (adds {entries}), or add them by "
                "hand."
            )
        return (
            f"EIP {missing}, the egress of {net.vswitch_id}, is not in the internet "
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


PULL_PATH = tuple(step for step in STEPS if step is not application.STEP)
"""What an image pull goes through: everything but the app itself (just deployed)."""


def root_cause(spec: DeploySpec, accounts: Accounts, earlier: Inspection | None = None) -> str:
    """Re-check every step of the pull path; the first one out of place is the cause.

    The whitelist is re-checked even when the spec leaves it unmanaged: it is still on the path.
    `earlier`, the run's own inspection: the steps re-read only what can have changed since
    (the egress, the ACL, the role, the policy, the tag), not the VPC or the instance.
    """
    checked = spec
    if spec.network.whitelist == "none":
        checked = spec.model_copy(update={"network": NetworkSpec(whitelist="auto")})
    try:
        found = inspect_all(checked, accounts, PULL_PATH, earlier)
    except CloudError as exc:
        return f"Root cause: the re-check itself failed ({exc})."
    blocked = [r for r in found.rows if r.blocked]
    if blocked:
        return "Root cause (re-checked now): " + _explain(blocked[0])
    for row in found.rows:
        if row.step == whitelist.NAME and (text := _whitelist_cause(found)) is not None:
            return "Root cause (re-checked now): " + text
        if not row.changes or row.step == application.STEP.name:
            continue
        return "Root cause (re-checked now): " + _explain(row)
    if dns_step := found.of(whitelist.STEP).dns_step:
        return (
            "Root cause (re-checked now): every step of the pull path the run can check is in "
            f"place; one it cannot check remains: {dns_step}"
        )
    return (
        "Root cause (re-checked now): every step of the pull path is in place now; the task "
        "message above is the best evidence (a transient failure, or a change that has since "
        "been undone)."
    )


@dataclass(frozen=True)
class Diagnosis:
    """What `diagnose` says, and the instances it read (the rollback reuses them)."""

    report: str
    instances: tuple[Any, ...] | None
    """None when they could not be read."""


def diagnose(
    spec: DeploySpec,
    accounts: Accounts,
    outcome: ChangeOrderOutcome,
    app_id: str,
    earlier: Inspection | None = None,
) -> Diagnosis:
    """The failed change order, the instances and the root cause, as a person reads them;
    `earlier` is the run's inspection (`root_cause`)."""
    lines = [outcome.summary()]
    instances: tuple[Any, ...] | None = None
    try:
        instances = app_instances(accounts.app, app_id)
        lines.append(_instances_line(count_statuses(instances)))
    except CloudError as exc:
        lines.append(f"Instances: unknown ({exc.code or 'network error'})")
    if not outcome.timed_out:
        lines.append(root_cause(spec, accounts, earlier))
    return Diagnosis("\n".join(lines), instances)


def rollback_target(
    accounts: Accounts, app_id: str, failed_image: str, instances: tuple[Any, ...] | None = None
) -> Any | None:
    """The newest version that ran and whose image is not the failed one; None when none is.

    ListAppVersions lists every release, the failed one included, and says nothing of how it
    went; a version is known to have run when the app's running instances run its image
    (`instances` as just read, or read now).
    """
    sae: Any = accounts.app.get_client("sae")
    versions = call(
        "sae:ListAppVersions",
        sae.list_app_versions,
        sae_models.ListAppVersionsRequest(app_id=app_id),
    ).body.data
    if instances is None:
        instances = app_instances(accounts.app, app_id)
    ran = running_images(instances) - {failed_image}
    newest_first = sorted(versions or [], key=_created_ms, reverse=True)
    return next((v for v in newest_first if v.build_package_url in ran), None)


def _created_ms(version: Any) -> int:
    text = str(version.create_time or "")
    return int(text) if text.isdigit() else 0


def roll_back(
    spec: DeploySpec,
    accounts: Accounts,
    app_id: str,
    outcome: ChangeOrderOutcome,
    instances: tuple[Any, ...] | None = None,
) -> str:
    """Undo the failed deploy and say what happened.

    An abnormal order (SubStatus 1) still executes, so SAE refuses RollbackApplication with
    `Application.ChangerOrderRunning`; it is aborted and rolled back by SAE in one call, as its
    SubStatus asks. A failed order returns to `rollback_target` (`instances`: the diagnosis's).
    """
    if outcome.abnormal:
        return _abort_and_roll_back(spec, accounts, app_id, outcome.change_order_id)
    return _roll_back_to_target(spec, accounts, app_id, instances)


def abort_refused(
    spec: DeploySpec, accounts: Accounts, app_id: str, outcome: ChangeOrderOutcome
) -> str:
    """A person refused a waiting batch (Abort): abort the order and say what the app runs.

    With `rollout.rollback_on_failure` the order is aborted and rolled back in one call
    (AbortAndRollbackChangeOrder, then SAE's rollback followed); otherwise AbortChangeOrder,
    and the batches released before keep the new version.
    """
    short = f"{outcome.change_order_id[:8]}…"
    head = (
        f"Batch {outcome.refused_batch} of {outcome.batches} of change order {short} was refused "
        "(Abort)."
    )
    if spec.rollout.rollback_on_failure:
        return head + "\n" + _abort_and_roll_back(spec, accounts, app_id, outcome.change_order_id)
    try:
        abort_change_order(accounts.app, outcome.change_order_id)
    except CloudError as exc:
        return f"{head}\nAborting change order {short} was refused: {exc}"
    return (
        f"{head}\nChange order {short} was aborted; the batches released before it keep "
        f"{spec.image.url} (rollout.rollback_on_failure is off)."
    )


def _roll_back_to_target(
    spec: DeploySpec, accounts: Accounts, app_id: str, instances: tuple[Any, ...] | None = None
) -> str:
    """RollbackApplication to the newest version that ran with another image."""
    target = rollback_target(accounts, app_id, spec.image.url, instances)
    if target is None:
        return (
            f"No earlier version that ran with an image other than {spec.image.url} (no running "
            "instance runs one), so there is nothing to roll back to; the app is left as it is."
        )
    sae: Any = accounts.app.get_client("sae")
    try:
        started = call(
            "sae:RollbackApplication",
            sae.rollback_application,
            sae_models.RollbackApplicationRequest(app_id=app_id, version_id=target.id),
        ).body.data
    except CloudError as exc:
        return f"Rollback to version {target.id} was refused: {exc}"
    done = _follow(spec, accounts, str(started.change_order_id))
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


def _abort_and_roll_back(
    spec: DeploySpec, accounts: Accounts, app_id: str, change_order_id: str
) -> str:
    """AbortAndRollbackChangeOrder, then follow the rollback SAE starts (the app's newest order).

    "Terminates a change order and rolls back the corresponding application"
    (https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-abortandrollbackchangeorder).
    A retry after a lost reply finds the order aborted and goes on; an order that ended meanwhile
    (`Application.ChangerOrder.Not.Running`) is rolled back as a failed one is.
    """
    sae: Any = accounts.app.get_client("sae")
    short = f"{change_order_id[:8]}…"
    request = sae_models.AbortAndRollbackChangeOrderRequest(change_order_id=change_order_id)

    def send() -> str:
        sae.abort_and_rollback_change_order(request)
        return change_order_id

    def landed() -> str | None:
        aborted = int(describe_order(sae, change_order_id).status or 0) == ABORTED
        return change_order_id if aborted else None

    try:
        write_once("sae:AbortAndRollbackChangeOrder", send, landed=landed)
    except CloudError as exc:
        if exc.code == "Application.ChangerOrder.Not.Running":
            return _roll_back_to_target(spec, accounts, app_id)
        return f"Aborting and rolling back change order {short} was refused: {exc}"
    rollback = _newest_order(sae, app_id, other_than=change_order_id)
    if rollback is None:
        return (
            f"Change order {short} was aborted, but SAE started no rollback; the app is left as "
            "it is."
        )
    done = _follow(spec, accounts, rollback)
    order = f"change order {rollback[:8]}…"
    if done.succeeded:
        return f"Rolled back: change order {short} aborted, and SAE's rollback ({order}) succeeded."
    return (
        f"Change order {short} was aborted, but SAE's rollback ({order}) did not land: it ended "
        f"{done.state}."
    )


def _newest_order(
    sae: Any, app_id: str, *, other_than: str, wait_seconds: float = 10.0
) -> str | None:
    """The app's newest change order once it is not `other_than` (within `wait_seconds`)."""
    deadline = time.monotonic() + wait_seconds
    request = sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    while True:
        status = call(
            "sae:DescribeApplicationStatus", sae.describe_application_status, request
        ).body.data
        newest = str(status.last_change_order_id or "") if status else ""
        if newest and newest != other_than:
            return newest
        if time.monotonic() >= deadline:
            return None
        time.sleep(1.0)


def _follow(spec: DeploySpec, accounts: Accounts, change_order_id: str) -> ChangeOrderOutcome:
    return follow_change_order(
        accounts.app,
        change_order_id,
        timeout_seconds=spec.rollout.timeout_seconds,
        region=spec.app.region,
        confirm=spec.rollout.confirm,
    )
