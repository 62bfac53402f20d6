"""Audit trail: a Prefect event per change, and a ledger of what a deploy created.

The ledger (a Prefect Variable per app) is what `teardown` reverses, so teardown removes what
deploy created and nothing else, even for resources that existed before (a merged trust policy).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from prefect.events import emit_event
from prefect.variables import Variable

from crossdeploy.plan import Change
from crossdeploy.spec import DeploySpec


def ledger_name(spec: DeploySpec) -> str:
    raw = f"crossdeploy-{spec.app.namespace_id}-{spec.app.name}".lower()
    return re.sub(r"[^a-z0-9_-]+", "-", raw)[:255]


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
                    "prefect.resource.id": f"sae.app.{spec.app.namespace_id}.{spec.app.name}",
                    "prefect.resource.role": "target",
                }
            ],
            payload={"detail": change.detail, "account": change.account},
        )


def load_ledger(spec: DeploySpec) -> list[Change]:
    raw: Any = Variable.get(ledger_name(spec), default=None)
    if not isinstance(raw, list):
        return []
    return [Change(**item) for item in raw if isinstance(item, dict)]


def record(spec: DeploySpec, changes: list[Change]) -> None:
    """Append changes to the ledger (deduplicated, order kept)."""
    if not changes:
        return
    entries = [asdict(c) for c in load_ledger(spec)]
    for change in changes:
        item = asdict(change)
        if item not in entries:
            entries.append(item)
    Variable.set(ledger_name(spec), entries, overwrite=True)


def forget(spec: DeploySpec) -> None:
    Variable.unset(ledger_name(spec))
