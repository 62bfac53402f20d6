"""Audit trail: a Prefect event per change (the whole history of what a deploy wrote) and per
drifted spec. What teardown reverses is kept in the ledger (crossdeploy/ledger.py).
"""

from __future__ import annotations

from prefect.events import emit_event

from crossdeploy.plan import Change, PlanRow
from crossdeploy.spec import DeploySpec

DRIFT_EVENT = "crossdeploy.drift.detected"


def app_resource_id(spec: DeploySpec) -> str:
    """The Prefect resource id of the SAE app a spec deploys (events name it as a target)."""
    return f"sae.app.{spec.app.namespace_id}.{spec.app.name}"


def emit_changes(spec: DeploySpec, uids: dict[str, str], changes: list[Change]) -> None:
    """One event per change, naming the resource (and the app it serves)."""
    for change in changes:
        uid = uids.get(change.account, change.account)
        emit_event(
            event=f"crossdeploy.{change.resource_type}.{change.action}",
            resource={
                "prefect.resource.id": f"acs.{uid}.{change.resource_type}.{change.resource_id}",
                "prefect.resource.name": change.resource_id,
                "acs.account": uid,
            },
            related=[
                {
                    "prefect.resource.id": app_resource_id(spec),
                    "prefect.resource.role": "target",
                }
            ],
            payload={"detail": change.detail, "account": change.account},
        )


def emit_drift(
    spec: DeploySpec, app_uid: str | None, rows: list[PlanRow], *, blocked: bool
) -> None:
    """`crossdeploy.drift.detected` for one spec: the app is the resource, the payload holds the
    steps whose live state differs from the spec (or that block the deploy)."""
    resource = {
        "prefect.resource.id": app_resource_id(spec),
        "prefect.resource.name": spec.app.name,
        "sae.namespace": spec.app.namespace_id,
    }
    if app_uid:
        resource["acs.account"] = app_uid
    emit_event(
        event=DRIFT_EVENT,
        resource=resource,
        payload={
            "image": spec.image.url,
            "blocked": blocked,
            "steps": [
                {
                    "step": r.step,
                    "account": r.account,
                    "resource": r.resource,
                    "now": r.now,
                    "wanted": r.wanted,
                    "action": r.action,
                    "reason": r.reason,
                }
                for r in rows
            ],
        },
    )
