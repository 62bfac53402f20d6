"""The cross-account deploy flow: plan, then apply, deploy, follow, verify, and explain failures.

    plan     both accounts inspected at once; a markdown artifact; stop if anything is BLOCKED
    apply    account B: pull role + policy (or account A: the registry secret), whitelist
    deploy   create the app, or deploy it only when its configuration differs
    follow   the change order, with a progress artifact
    verify   RUNNING with all replicas
    on failure: the failed stage and task, the instances, the root cause found by re-checking
    the pull path, then a rollback to the last good version when `rollback_on_failure`.

Every change emits a Prefect event and is recorded in the ledger that `teardown` reverses; each
phase records its writes in the ledger before making them (write-ahead, see crossdeploy/ledger.py),
so a process killed between a write and its record leaves nothing teardown cannot find.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from crossdeploy import audit, ledger, quota, write_ahead
from crossdeploy.app_lock import app_lock
from crossdeploy.diagnosis import abort_refused, diagnose, roll_back
from crossdeploy.plan import Change, Plan
from crossdeploy.planner import Accounts, Inspection, inspect_all, make_plan, resolve_accounts
from crossdeploy.spec import DeploySpec, with_image_tag
from flows.results import RESULT_SERIALIZER
from flows.run_names import deploy_run_name
from tasks.application import ApplicationResult, apply_application, inspect_application
from tasks.batch_confirmation import can_ask, follow_asking
from tasks.change_order import follow
from tasks.image import pushed_later
from tasks.pull_policy import apply_pull_policy
from tasks.pull_role import apply_pull_role
from tasks.registry_secret import apply_registry_secret
from tasks.verify import verify_app
from tasks.whitelist import apply_whitelist

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


_apply_role = task(name="pull-role", cache_policy=NO_CACHE)(apply_pull_role)
_apply_policy = task(name="pull-policy", cache_policy=NO_CACHE)(apply_pull_policy)
_apply_whitelist = task(name="whitelist", cache_policy=NO_CACHE)(apply_whitelist)
_apply_secret = task(name="registry-secret", cache_policy=NO_CACHE)(apply_registry_secret)
_apply_app = task(name="application", cache_policy=NO_CACHE)(apply_application)


def _publish_plan(spec: DeploySpec, plan: Plan) -> None:
    create_markdown_artifact(
        plan.to_markdown(), key=f"plan-{spec.app.name}", description=plan.summary()
    )


def _apply_access(
    spec: DeploySpec, accounts: Accounts, found: Inspection
) -> tuple[list[Change], int | None]:
    """Role, policy and whitelist in B (concurrently), or the secret in A, announced in the
    ledger first and recorded after; returns changes and the secret id the app must use."""
    role, policy = found.role, found.policy
    secret = found.secret if accounts.login is not None else None
    pull_role = (role, policy) if role is not None and policy is not None else ()
    ahead = _announce(spec, accounts, found.whitelist, *pull_role, secret)
    changes: list[Change] = []
    whitelist_f = _apply_whitelist.submit(accounts.registry, found.whitelist)
    secret_id = None
    if role is not None and policy is not None:
        changes += _apply_role.submit(accounts.registry, role).result()
        changes += _apply_policy.submit(accounts.registry, policy).result()
    if secret is not None and accounts.login is not None:
        result = _apply_secret.submit(accounts.app, secret, accounts.login).result()
        changes += list(result.changes)
        secret_id = result.secret_id
    changes += whitelist_f.result()
    _record(spec, accounts, changes, ahead)
    return changes, secret_id


def _deploy_app(
    spec: DeploySpec, accounts: Accounts, found: Inspection, secret_id: int | None
) -> ApplicationResult:
    state = found.app
    if found.secret is not None and secret_id != found.secret.secret_id:
        state = inspect_application(
            accounts.app,
            spec,
            role_arn=None,
            secret_id=secret_id,
            instance_id=found.image.instance_id,
            vpc_id=found.network.vpc_id or None,
            vswitch_id=found.network.vswitch_id or None,
        )
    ahead = _announce(spec, accounts, state)
    app = _apply_app.submit(accounts.app, state).result()
    _record(spec, accounts, list(app.changes), ahead)
    return app


def _announce(spec: DeploySpec, accounts: Accounts, *states: object) -> list[ledger.Intent]:
    """Write ahead: the writes applying `states` will make, in the ledger before they are made
    (which first checks the ledger will hold them)."""
    ahead = write_ahead.intents(*states)
    ledger.intend(spec, accounts.app_uid, ahead)
    return ahead


def _record(
    spec: DeploySpec,
    accounts: Accounts,
    changes: list[Change],
    settles: list[ledger.Intent] | None = None,
) -> None:
    """The changes as events, and those teardown needs in the ledger, in place of the intents
    they settle."""
    audit.emit_changes(spec, accounts.uids, changes)
    ledger.record(spec, accounts.app_uid, changes, settles or ())


@flow(
    name="cross-account-deploy",
    flow_run_name=deploy_run_name,
    log_prints=True,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def cross_account_deploy(
    spec: DeploySpec,
    dry_run: bool = False,
    image_tag: str | None = None,
    skip_older: bool = False,
) -> DeployResult:
    """Deploy an SAE app in account A from a private image in account B's ACR.

    `image_tag` replaces the tag of `spec.image.url` (the image-push trigger passes the pushed
    tag); `dry_run` stops after the plan; `skip_older` (set by the image-push deployment) skips
    a tag that ACR says was pushed before the tag the app runs now.

    Args:
        spec: The deploy spec: both accounts' credential blocks, the SAE app and the image.
        dry_run: Plan only: inspect both accounts and publish the plan; change nothing.
        image_tag: Deploy this tag of the spec's image repository instead of the spec's tag.
        skip_older: Skip the deploy when the app already runs a tag of the same repository that
            was pushed later (pushes close together start runs in any order).
    """
    logger = get_run_logger()
    if image_tag:
        spec = with_image_tag(spec, image_tag)
    accounts = resolve_accounts(spec)
    # One run per app at a time, from inspection to the verified app (dry runs only read).
    run_id = flow_run.get_id()
    lock = app_lock(
        spec,
        accounts.app_uid,
        flow_run_id=UUID(run_id) if run_id else None,
        wait_seconds=spec.rollout.timeout_seconds + 600,
    )
    with quota.paced(accounts.app_uid, spec.app.region), nullcontext() if dry_run else lock:
        found = inspect_all(spec, accounts)
        plan = make_plan(spec, accounts, found)
        running = found.app.current.get("ImageUrl")
        if skip_older and (later := pushed_later(accounts.registry, spec, found.image, running)):
            logger.info("%s", later)
            return DeployResult("unchanged", later, plan, found.app.app_id)
        _publish_plan(spec, plan)
        logger.info("%s", plan.summary())
        if plan.blocked:
            reasons = "\n".join(f"  {r.step}: {r.reason}" for r in plan.blocked)
            raise DeployError(f"The plan is blocked; nothing was changed.\n{reasons}", plan)
        if dry_run:
            return DeployResult("planned", plan.summary() + " Dry run: nothing changed.", plan)

        ledger.migrate(spec, accounts.app_uid)  # an old-format ledger, moved once
        changes, secret_id = _apply_access(spec, accounts, found)
        return land_app(spec, accounts, found, plan, secret_id, tuple(changes))


def land_app(
    spec: DeploySpec,
    accounts: Accounts,
    found: Inspection,
    plan: Plan,
    secret_id: int | None,
    earlier: tuple[Change, ...] = (),
) -> DeployResult:
    """Deploy the app as inspected (its pull access is in place), follow the change order and
    verify it; on failure diagnose, roll back, and raise DeployError. `earlier` are the run's
    changes so far. The fleet deploy lands each of its apps with this too."""
    logger = get_run_logger()
    app = _deploy_app(spec, accounts, found, secret_id)
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
        )
    else:
        outcome = follow(
            accounts.app,
            app.change_order_id,
            timeout_seconds=spec.rollout.timeout_seconds,
            region=spec.app.region,
            confirm=spec.rollout.confirm,
        )
    if outcome.refused_batch is not None:
        report = abort_refused(spec, accounts, app.app_id, outcome)
        logger.error("%s", report)
        raise DeployError(report, plan, tuple(changes))
    if outcome.succeeded:
        verified = verify_app(accounts.app, app.app_id, spec.app.replicas)
        if verified.ok:
            message = f"{spec.app.name} is RUNNING: {verified.summary()}"
            return DeployResult(
                "deployed", message, plan, app.app_id, app.change_order_id, tuple(changes)
            )
        raise DeployError(f"The change order succeeded but {verified.summary()}", plan)

    report = diagnose(spec, accounts, outcome, app.app_id)
    if spec.rollout.rollback_on_failure and not outcome.timed_out:
        report += "\n" + roll_back(spec, accounts, app.app_id, outcome)
    logger.error("%s", report)
    raise DeployError(report, plan, tuple(changes))
