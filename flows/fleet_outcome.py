"""What a fleet's parent and its per-app children pass each other, in JSON the Prefect server holds.

A fleet run across workers (flows/fleet_deploy.py with `app_deployment`) starts one `fleet-app`
flow run per app (flows/fleet_app.py), on whichever worker takes it, on whichever machine. A
child's persisted result stays in that machine's local result storage, so neither direction may
rely on it: the parent hands each child its spec and `AppAccess` as flow-run parameters, and the
child hands back its `AppOutcome` as a table artifact (key OUTCOME_KEY) on its own flow run, one
row, readable by the parent and by a person in the UI. Neither carries a secret: the access is
ids and ARNs, the outcome is the same words and Changes the in-process fleet reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from crossdeploy.cloud import CloudError
from crossdeploy.plan import Change
from crossdeploy.spec import DeploySpec
from flows.landing import DeployError, DeployResult

AppOutcomeKind = Literal["planned", "unchanged", "deployed", "blocked", "failed"]
OUTCOME_KEY = "fleet-app-outcome"
"""The artifact key of a child's outcome (one per child flow run)."""


@dataclass(frozen=True)
class AppOutcome:
    name: str
    namespace_id: str
    region: str
    outcome: AppOutcomeKind
    message: str
    app_id: str | None = None
    change_order_id: str | None = None
    changes: tuple[Change, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in ("planned", "unchanged", "deployed")

    def line(self) -> str:
        return f"{self.name} ({self.namespace_id}): {self.outcome}: {self.message}"

    def row(self) -> dict[str, Any]:
        """The artifact row: plain JSON (Changes as objects)."""
        return {**asdict(self), "changes": [asdict(c) for c in self.changes]}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AppOutcome:
        changes = tuple(Change(**c) for c in row.get("changes") or ())
        return cls(**{**row, "changes": changes})


def outcome_of(
    spec: DeploySpec,
    kind: AppOutcomeKind,
    message: str,
    app_id: str | None = None,
    change_order_id: str | None = None,
    changes: tuple[Change, ...] = (),
) -> AppOutcome:
    return AppOutcome(
        spec.app.name,
        spec.app.namespace_id,
        spec.app.region,
        kind,
        message,
        app_id,
        change_order_id,
        changes,
    )


def landing_outcome(spec: DeploySpec, land: Callable[[], DeployResult]) -> AppOutcome:
    """What landing one app of a fleet came to: its result, or why it failed, in words (an
    app's failure is its own: the fleet goes on)."""
    try:
        done = land()
    except DeployError as exc:
        return outcome_of(spec, "failed", exc.message, changes=exc.changes)
    except Exception as exc:
        return outcome_of(spec, "failed", failure(exc))
    return outcome_of(
        spec, done.outcome, done.message, done.app_id, done.change_order_id, done.changes
    )


def failure(exc: BaseException) -> str:
    """A CloudError names its action and code; anything else its type and text."""
    return str(exc) if isinstance(exc, CloudError) else f"{type(exc).__name__}: {exc}"


def outcome_from_artifact(data: Any) -> AppOutcome | None:
    """The outcome a child published (a table artifact's data: JSON text of one row)."""
    rows = json.loads(data) if isinstance(data, str) else data
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        return None
    return AppOutcome.from_row(rows[0])


class AppAccess(BaseModel):
    """What the app pulls with, as its namespace's shared steps landed in the parent: what
    the app's inspection reads of the other steps (no secret: ids and an ARN)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role_arn: str | None = None
    secret_id: int | None = None
    instance_id: str | None = None
    vpc_id: str | None = None
    vswitch_id: str | None = None
