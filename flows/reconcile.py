"""Reconcile: plan every spec, report drift, and apply only when asked.

Meant for a schedule (the `reconcile` deployment in prefect.yaml runs it every 30 minutes):

    plan     each spec exactly as `cross_account_deploy` plans it (flows/inspection.py), no writes
    report   ONE markdown artifact `reconcile-drift`: spec/app, step, account, now, wanted, action
             for every step that differs or blocks; one `crossdeploy.drift.detected` event per
             drifted spec (resource: the app; payload: those steps)
    apply    only with `apply=True`: `cross_account_deploy` as a subflow for each drifted spec;
             a BLOCKED spec is reported and never applied

The run fails (after reporting) when a spec could not be planned or an applied deploy failed,
so a schedule's failures are visible; drift alone, and BLOCKED specs, are reported, not failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from crossdeploy import audit, quota
from crossdeploy.plan import Plan, PlanRow
from crossdeploy.spec import DeploySpec
from flows.cross_account_deploy import cross_account_deploy
from flows.inspection import inspect_all, make_plan, resolve_accounts
from flows.landing import DeployError, DeployResult
from flows.results import RESULT_SERIALIZER
from flows.run_names import reconcile_run_name

ARTIFACT_KEY = "reconcile-drift"

Status = Literal["in-sync", "drifted", "blocked", "error"]
Applied = Literal["deployed", "unchanged", "failed"]


@dataclass(frozen=True)
class SpecReport:
    """What reconcile found, and did, for one spec."""

    app: str
    """`<namespace id>/<app name>`."""
    status: Status
    steps: tuple[PlanRow, ...] = ()
    message: str = ""
    applied: Applied | None = None
    """Set only for the specs that were applied (`apply=True` and drifted)."""


@dataclass(frozen=True)
class ReconcileResult:
    applied: bool
    specs: tuple[SpecReport, ...] = field(default_factory=tuple)

    def with_status(self, status: Status) -> list[SpecReport]:
        return [s for s in self.specs if s.status == status]

    @property
    def failed(self) -> list[SpecReport]:
        return [s for s in self.specs if s.status == "error" or s.applied == "failed"]

    def summary(self) -> str:
        counts = {s: len(self.with_status(s)) for s in ("drifted", "blocked", "in-sync", "error")}
        text = (
            f"{len(self.specs)} spec{'s' if len(self.specs) != 1 else ''}: "
            f"{counts['drifted']} drifted, {counts['blocked']} blocked, "
            f"{counts['in-sync']} in sync"
        )
        if counts["error"]:
            text += f", {counts['error']} could not be planned"
        if self.applied:
            deployed = sum(1 for s in self.specs if s.applied in ("deployed", "unchanged"))
            failed = sum(1 for s in self.specs if s.applied == "failed")
            text += f"; applied {deployed}" + (f", {failed} failed" if failed else "")
        else:
            text += "; plan only (apply=false)"
        return text + "."


class ReconcileError(Exception):
    """Some spec could not be planned or its deploy failed; `result` has every spec.

    Read back from the run's persisted result (JSON keeps an error's message only), it is
    rebuilt from its message, and `result` is None."""

    def __init__(self, result: ReconcileResult | str) -> None:
        if isinstance(result, str):
            self.result: ReconcileResult | None = None
            super().__init__(result)
            return
        self.result = result
        lines = [f"  {s.app}: {s.message}" for s in result.failed]
        super().__init__(result.summary() + "\n" + "\n".join(lines))


def spec_label(spec: DeploySpec) -> str:
    return f"{spec.app.namespace_id}/{spec.app.name}"


def _drifted_steps(plan: Plan) -> tuple[PlanRow, ...]:
    return tuple(r for r in plan.rows if r.changes or r.blocked)


def _plan_one(spec: DeploySpec) -> SpecReport:
    """Plan one spec; emit its drift event when it drifted. Never raises for a cloud or block
    problem: that spec is reported as `error` and the others are still planned."""
    label = spec_label(spec)
    try:
        accounts = resolve_accounts(spec)
        with quota.paced(accounts.app_uid, spec.app.region):
            plan = make_plan(spec, accounts, inspect_all(spec, accounts))
    except Exception as exc:  # one spec's failure must not hide the others' drift
        return SpecReport(label, "error", message=f"could not be planned: {exc}")
    steps = _drifted_steps(plan)
    if not steps:
        return SpecReport(label, "in-sync", message="in sync")
    status: Status = "blocked" if plan.blocked else "drifted"
    drifted_rows = [r for r in plan.rows if r.changes or r.blocked]
    audit.emit_drift(spec, accounts.app_uid, drifted_rows, blocked=bool(plan.blocked))
    return SpecReport(label, status, steps, plan.summary())


def _apply_one(spec: DeploySpec, report: SpecReport) -> SpecReport:
    """`cross_account_deploy` as a subflow of this run; its failure is reported, not raised."""
    state = cross_account_deploy(spec=spec, return_state=True)
    if state.is_completed():
        result = state.result()
        assert isinstance(result, DeployResult)
        outcome: Applied = "unchanged" if result.outcome == "unchanged" else "deployed"
        return SpecReport(report.app, report.status, report.steps, result.message, outcome)
    error = state.result(raise_on_failure=False)
    message = error.message if isinstance(error, DeployError) else f"{state.name}: {error}"
    return SpecReport(report.app, report.status, report.steps, message, "failed")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def drift_markdown(result: ReconcileResult) -> str:
    """The artifact: one table of every drifted or blocked step, then each spec's outcome."""
    lines = [f"### Reconcile: {result.summary()}", ""]
    rows = [(s, step) for s in result.specs for step in s.steps]
    if rows:
        lines += [
            "| spec / app | step | account | now | wanted | action |",
            "|---|---|---|---|---|---|",
        ]
        for spec, step in rows:
            cells = [spec.app, step.step, step.account, step.now, step.wanted, step.action]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    else:
        lines += ["No drift: every spec matches its live state.", ""]
    for spec in result.specs:
        for step in spec.steps:
            if step.action == "BLOCKED" and step.reason:
                lines.append(f"- **{spec.app}** {step.step} BLOCKED: {_cell(step.reason)}")
    lines.append("")
    for spec in result.specs:
        outcome = {
            "in-sync": "in sync",
            "drifted": "drifted" if not result.applied else f"applied: {spec.applied}",
            "blocked": "blocked: not applied",
            "error": "error",
        }[spec.status]
        lines.append(f"- **{spec.app}**: {outcome}. {_cell(spec.message)}")
    return "\n".join(lines)


@flow(
    name="reconcile",
    flow_run_name=reconcile_run_name,
    log_prints=True,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def reconcile(specs: list[DeploySpec], apply: bool = False) -> ReconcileResult:
    """Plan every spec, report drift as an artifact and events, apply only when asked.

    Args:
        specs: The deploy specs to keep in sync (each one as `cross-account-deploy` takes it).
        apply: Deploy the drifted specs (as `cross-account-deploy` subflows); BLOCKED specs are
            never applied. False: plan and report only.
    """
    logger = get_run_logger()
    reports = [_plan_one(spec) for spec in specs]
    if apply:
        reports = [
            _apply_one(spec, report) if report.status == "drifted" else report
            for spec, report in zip(specs, reports, strict=True)
        ]
    result = ReconcileResult(apply, tuple(reports))
    create_markdown_artifact(drift_markdown(result), key=ARTIFACT_KEY, description=result.summary())
    logger.info("%s", result.summary())
    if result.failed:
        raise ReconcileError(result)
    return result
