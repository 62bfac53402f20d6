"""Landing a deploy: the access steps' writes, then the app deployed, followed and verified.

Shared by the deploy flow and the fleet (which lands each of its apps with `land_app`). Every
phase announces its writes in the ledger before making them (write-ahead: each step's `intents`,
crossdeploy/ledger.py) and records what it wrote after, so a process killed between a write and
its record leaves nothing teardown cannot find. Every change is also a Prefect event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from crossdeploy import audit, ledger, quota
from crossdeploy.plan import Change, Plan
from crossdeploy.spec import DeploySpec
from flows.diagnosis import abort_refused, diagnose, roll_back
from flows.steps import STEPS
from tasks import application
from tasks.batch_confirmation import can_ask, follow_asking
from tasks.change_order import DEFAULT_POLL, PollPolicy, follow
from tasks.step import Accounts, Inspected, Inspection, Landed, Step
from tasks.verify import verify_app

Outcome = Literal["planned", "unchanged", "deployed"]


@dataclass(frozen=True)
class DeployResult:
    outcome: Outcome
    message: str
    plan: Plan
    app_id: str | None = None
    change_order_id: str | None = None
    changes: tuple[Change, ...] = ()


@dataclass
class DeployError(Exception):
    """The deploy did not happen or did not land; `message` says why in words."""

    message: str
    plan: Plan | None = None
    changes: tuple[Change, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"DeployError({self.message!r})"


ACCESS = tuple(step for step in STEPS if step.writes and step is not application.STEP)
"""The steps that give the app its pull access, written before it is deployed."""


def apply_steps(
    spec: DeploySpec, accounts: Accounts, states: Mapping[Step[Any, Any], Inspected]
) -> tuple[list[Change], dict[str, Inspected]]:
    """Apply these steps' states, each once the steps it comes `after` have landed (the others
    at once), announced in the ledger first and recorded after. Returns the changes and each
    step's state as landed (`Step.landed`: a new secret's id)."""
    ahead = announce(spec, accounts, states.items())
    futures: dict[str, tuple[Step[Any, Any], Inspected, PrefectFuture[Any]]] = {}
    for step, state in states.items():
        after = [futures[name][2] for name in step.after if name in futures]
        future = step.apply_task.submit(accounts, state, return_state=False, wait_for=after)
        futures[step.name] = (step, state, future)
    changes: list[Change] = []
    landed: dict[str, Inspected] = {}
    for name, (step, state, future) in futures.items():
        result: Landed = future.result()
        changes += result.changes
        landed[name] = step.landed(state, result)
    record(spec, accounts, changes, ahead)
    return changes, landed


def apply_access(
    spec: DeploySpec, accounts: Accounts, found: Inspection
) -> tuple[list[Change], Inspection]:
    """The access steps the deploy has (role, policy and whitelist in B, or the secret in A);
    returns the changes and the inspection as the app must see it (`with_landed`)."""
    states = {step: found.of(step) for step in ACCESS if step.name in found.states}
    changes, landed = apply_steps(spec, accounts, states)
    return changes, with_landed(spec, accounts, found, landed)


def with_landed(
    spec: DeploySpec, accounts: Accounts, found: Inspection, landed: Mapping[str, Inspected]
) -> Inspection:
    """The inspection with the access states as they landed; the app's state is decided again
    (from the app as inspected, not read again) only when a state it reads changed (a secret
    created now has an id the inspection did not)."""
    changed = {name: s for name, s in landed.items() if s != found.states.get(name)}
    if not changed:
        return found
    merged = Inspection({**found.states, **changed})
    app = application.STEP
    if not any(name in app.needs for name in changed):
        return merged
    again = Inspection(merged.states, earlier=found.states)
    return merged.with_state(app, app.inspect_task(accounts, spec, again))


def announce(
    spec: DeploySpec, accounts: Accounts, states: Iterable[tuple[Step[Any, Any], Inspected]]
) -> list[ledger.Intent]:
    """Write ahead: the writes applying `states` will make, in the ledger before they are made
    (which first checks the ledger will hold them)."""
    ahead = [intent for step, state in states for intent in step.intents(state)]
    ledger.intend(spec, accounts.app_uid, ahead)
    return ahead


def record(
    spec: DeploySpec,
    accounts: Accounts,
    changes: list[Change],
    settles: list[ledger.Intent] | None = None,
) -> None:
    """The changes as events, and those teardown needs in the ledger, in place of the intents
    they settle."""
    audit.emit_changes(spec, accounts.uids, changes)
    ledger.record(spec, accounts.app_uid, changes, settles or (), retention=STEPS)


def land_app(
    spec: DeploySpec,
    accounts: Accounts,
    found: Inspection,
    plan: Plan,
    earlier: tuple[Change, ...] = (),
    poll: PollPolicy = DEFAULT_POLL,
) -> DeployResult:
    """Deploy the app as inspected (its pull access is in place: `found` as `with_landed` made
    it), follow the change order (read on `poll`'s schedule) and verify it; on failure diagnose,
    roll back, and raise DeployError. `earlier` are the run's changes so far."""
    logger = get_run_logger()
    app_step = application.STEP
    state = found.of(app_step)
    if not state.unchanged:
        quota.take_ahead()  # the app's deploy call: its slot is asked during the ledger write
    ahead = announce(spec, accounts, [(app_step, state)])
    app = app_step.apply_task.submit(accounts, state).result()
    record(spec, accounts, list(app.changes), ahead)
    changes = [*earlier, *app.changes]
    if app.change_order_id is None:
        message = f"{spec.app.name} already matches the spec; no change order was started."
        return DeployResult("unchanged", message, plan, app.app_id, None, tuple(changes))

    if spec.rollout.confirm == "manual" and can_ask():  # a person confirms in the Prefect UI
        outcome = follow_asking(
            accounts.app,
            app.change_order_id,
            timeout_seconds=spec.rollout.timeout_seconds,
            region=spec.app.region,
            label=f"{spec.app.name}@{spec.image.ref.tag}",
            poll=poll,
        )
    else:
        outcome = follow(
            accounts.app,
            app.change_order_id,
            timeout_seconds=spec.rollout.timeout_seconds,
            region=spec.app.region,
            confirm=spec.rollout.confirm,
            poll=poll,
        )
    if outcome.refused_batch is not None:
        report = abort_refused(spec, accounts, app.app_id, outcome)
        logger.error("%s", report)
        raise DeployError(report, plan, tuple(changes))
    if outcome.succeeded:
        quota.take_ahead()  # verify's first call: its slot is asked while its task starts
        verified = verify_app(accounts.app, app.app_id, spec.app.replicas)
        if verified.ok:
            message = f"{spec.app.name} is RUNNING: {verified.summary()}"
            return DeployResult(
                "deployed", message, plan, app.app_id, app.change_order_id, tuple(changes)
            )
        raise DeployError(f"The change order succeeded but {verified.summary()}", plan)

    diagnosis = diagnose(spec, accounts, outcome, app.app_id, found)
    report = diagnosis.report
    if spec.rollout.rollback_on_failure and not outcome.timed_out:
        report += "\n" + roll_back(spec, accounts, app.app_id, outcome, diagnosis.instances)
    logger.error("%s", report)
    raise DeployError(report, plan, tuple(changes))
