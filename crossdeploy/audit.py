"""Audit trail: a Prefect event per change, and a ledger of what a deploy created.

The ledger (a Prefect Variable per app) is what `teardown` reverses, so teardown removes what
deploy created and nothing else, even for resources that existed before (a merged trust policy).

It is written ahead, so a process killed at any point leaves no orphan. A kill between a write and
its record would otherwise lose the change for good: the re-run finds the resource as wanted and
records nothing. So a phase first records the writes it is about to make as *intended* entries
(`intend`, derived from the inspected state each write acts on: crossdeploy/write_ahead.py), and
once they returned replaces them with the actual changes (`record(..., settles=...)`). An intended
entry still there at teardown is confirmed against the cloud (present and ours, or gone) and then
reversed by the same remove_* functions as a recorded change.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect.events import emit_event

from crossdeploy.plan import Change, PlanRow
from crossdeploy.prefect_api import (
    delete_variable,
    patiently,
    quick_client,
    read_variable,
    write_variable,
)
from crossdeploy.spec import DeploySpec

DRIFT_EVENT = "crossdeploy.drift.detected"
PENDING = "pending"
"""The key that marks a ledger entry as intended but not yet confirmed; it holds the evidence."""


@dataclass(frozen=True)
class Intent:
    """A write about to be made: the Change it will record, and how to tell the result is ours."""

    change: Change
    """As far as it is known before the write; an id only the cloud assigns is "?"."""
    evidence: dict[str, str] = field(default_factory=dict)
    """What marks the resource as ours if it exists (the description we create it with, ...)."""


def ledger_name(spec: DeploySpec) -> str:
    raw = f"crossdeploy-{spec.app.namespace_id}-{spec.app.name}".lower()
    return re.sub(r"[^a-z0-9_-]+", "-", raw)[:255]


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


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _ledger_lock(spec: DeploySpec) -> threading.Lock:
    """One read-modify-write at a time per ledger in this process (threads sharing a ledger would
    lose each other's entries); different ledgers are written in parallel."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(ledger_name(spec), threading.Lock())


def _entries(spec: DeploySpec) -> list[dict[str, Any]]:
    with quick_client() as client:
        raw: Any = patiently(lambda: read_variable(client, ledger_name(spec)))
    return [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def _pending_entry(intent: Intent) -> dict[str, Any]:
    return {**asdict(intent.change), PENDING: intent.evidence}


def load_ledger(spec: DeploySpec) -> list[Change]:
    """The confirmed changes."""
    return [Change(**item) for item in _entries(spec) if PENDING not in item]


def load_pending(spec: DeploySpec) -> list[Intent]:
    """The intended changes no run confirmed (its process died between write and record)."""
    return [
        Intent(Change(**{k: v for k, v in item.items() if k != PENDING}), dict(item[PENDING]))
        for item in _entries(spec)
        if isinstance(item.get(PENDING), dict)
    ]


def intend(spec: DeploySpec, intents: Sequence[Intent]) -> None:
    """Write ahead: record the writes about to be made, before making them."""
    if intents:
        with _ledger_lock(spec):
            _save(spec, _entries(spec), [_pending_entry(i) for i in intents])


def record(spec: DeploySpec, changes: list[Change], settles: Sequence[Intent] = ()) -> None:
    """Append changes to the ledger (deduplicated, order kept), dropping the intents they settle."""
    if not changes and not settles:
        return
    settled = [_pending_entry(i) for i in settles]
    with _ledger_lock(spec):
        kept = [item for item in _entries(spec) if item not in settled]
        _save(spec, kept, [asdict(c) for c in changes])


def _save(spec: DeploySpec, entries: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    for item in new:
        if item not in entries:
            entries.append(item)
    with quick_client() as client:
        patiently(lambda: write_variable(client, ledger_name(spec), entries))


def forget(spec: DeploySpec) -> None:
    with quick_client() as client:
        patiently(lambda: delete_variable(client, ledger_name(spec)))
