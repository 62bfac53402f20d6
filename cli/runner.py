"""Run the flows for the CLI and turn their outcome into printed text and an exit code."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from cli.render import print_plan
from crossdeploy.cloud import CloudError
from crossdeploy.fleet_spec import FleetSpec, fleet_from_files, is_fleet_file
from crossdeploy.permissions import Phase
from crossdeploy.plan import Plan
from crossdeploy.spec import DeploySpec, SpecError, load_spec

if TYPE_CHECKING:
    from flows.permissions import RequiredPermissions


@dataclass(frozen=True)
class RunOutcome:
    ok: bool
    message: str
    plan: Plan | None = None


def read_spec(out: Console, path: Path) -> DeploySpec | None:
    try:
        return load_spec(path)
    except SpecError as exc:
        out.print(str(exc), markup=False)
        return None


def read_specs(
    out: Console, paths: list[Path], fleet_name: str | None = None
) -> DeploySpec | FleetSpec | None:
    """One deploy spec file: that spec. Several files, or a fleet file: one fleet."""
    if len(paths) == 1 and fleet_name is None and not is_fleet_file(paths[0]):
        return read_spec(out, paths[0])
    try:
        return fleet_from_files(paths, fleet_name)
    except SpecError as exc:
        out.print(str(exc), markup=False)
        return None


class _NoTraceback(logging.Filter):
    """Prefect logs a task's exception with its traceback. An AccountError raised in a task (a
    block unusable: the identity check) is an expected failure whose message says it all: keep
    the record, drop the traceback, so the CLI shows none (interfaces.md section 1). The flows
    end expected failures without raising (flows/results.py's `expected_failures`)."""

    def __init__(self, *expected: type[BaseException]) -> None:
        super().__init__()
        self.expected = expected

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.expected):
            record.exc_info, record.exc_text = None, None
        return True


def run_deploy(spec: DeploySpec, *, dry_run: bool) -> RunOutcome:
    """Run `cross_account_deploy` in this process; never raises for expected failures."""
    from flows.cross_account_deploy import cross_account_deploy
    from flows.inspection import AccountError
    from flows.landing import DeployError

    engine_loggers = [logging.getLogger(f"prefect.{kind}_runs") for kind in ("flow", "task")]
    quiet = _NoTraceback(DeployError, AccountError, SpecError)
    for logger in engine_loggers:
        logger.addFilter(quiet)
    try:
        state = cross_account_deploy(spec=spec, dry_run=dry_run, return_state=True)
    finally:
        for logger in engine_loggers:
            logger.removeFilter(quiet)
    if state.is_completed():
        result = state.result()
        return RunOutcome(True, result.message, result.plan)
    error = state.result(raise_on_failure=False)
    if isinstance(error, DeployError):
        return RunOutcome(False, error.message, error.plan)
    if isinstance(error, CloudError | ValueError):
        return RunOutcome(False, str(error))
    return RunOutcome(False, f"the deploy flow ended {state.name}: {error}")


def run_fleet(
    fleet: FleetSpec,
    *,
    dry_run: bool,
    calls_per_minute: int = 60,
    max_parallel: int | None = None,
    app_deployment: str | None = None,
) -> RunOutcome:
    """Run `fleet_deploy` in this process; never raises for expected failures."""
    from flows.fleet_deploy import FleetError, fleet_deploy
    from flows.inspection import AccountError

    engine_loggers = [logging.getLogger(f"prefect.{kind}_runs") for kind in ("flow", "task")]
    quiet = _NoTraceback(FleetError, AccountError, SpecError)
    for logger in engine_loggers:
        logger.addFilter(quiet)
    try:
        state = fleet_deploy(
            fleet=fleet,
            dry_run=dry_run,
            quota_calls=calls_per_minute,
            max_parallel=max_parallel,
            app_deployment=app_deployment,
            return_state=True,
        )
    finally:
        for logger in engine_loggers:
            logger.removeFilter(quiet)
    if state.is_completed():
        result = state.result()
        return RunOutcome(True, result.message(), result.plan)
    error = state.result(raise_on_failure=False)
    if isinstance(error, FleetError):
        return RunOutcome(False, error.message, error.plan)
    if isinstance(error, CloudError | ValueError):
        return RunOutcome(False, str(error))
    return RunOutcome(False, f"the fleet deploy flow ended {state.name}: {error}")


def run_teardown(spec: DeploySpec) -> RunOutcome:
    from flows.teardown import teardown

    state = teardown(spec=spec, return_state=True)
    if state.is_completed():
        result = state.result()
        lines = [result.message] + [
            f"  {c.account} {c.resource_type} {c.resource_id}: {c.action}" for c in result.removed
        ]
        return RunOutcome(True, "\n".join(lines))
    return RunOutcome(False, f"teardown ended {state.name}: {state.result(raise_on_failure=False)}")


def run_permissions(spec: DeploySpec, phase: Phase) -> RequiredPermissions | str:
    """The policies `crossdeploy permissions` prints, or why they could not be made."""
    from flows.permissions import required_permissions

    state = required_permissions(spec=spec, phase=phase, return_state=True)
    if state.is_completed():
        result: RequiredPermissions = state.result()
        return result
    error = state.result(raise_on_failure=False)
    if isinstance(error, CloudError | ValueError):
        return str(error)
    return f"the permissions flow ended {state.name}: {error}"


def report(out: Console, outcome: RunOutcome) -> int:
    if outcome.plan is not None:
        print_plan(out, outcome.plan)
        out.print()
    out.print(outcome.message, markup=False, style=None if outcome.ok else "red")
    return 0 if outcome.ok else 1
