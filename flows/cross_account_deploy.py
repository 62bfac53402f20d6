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

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from crossdeploy import ledger, quota
from crossdeploy.app_lock import app_lock
from crossdeploy.plan import Plan
from crossdeploy.spec import DeploySpec, SpecError, with_image_tag
from flows.inspection import AccountError, inspect_all, make_plan, resolve_accounts
from flows.landing import DeployError, DeployResult, apply_access, land_app
from flows.permissions import check_permissions, refusal
from flows.results import RESULT_SERIALIZER, expected_failures
from flows.run_names import deploy_run_name
from flows.steps import STEPS
from tasks import application, image
from tasks.step import Inspection


def _publish_plan(spec: DeploySpec, plan: Plan) -> None:
    create_markdown_artifact(
        plan.to_markdown(), key=f"plan-{spec.app.name}", description=plan.summary()
    )


@flow(
    name="cross-account-deploy",
    flow_run_name=deploy_run_name,
    log_prints=True,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
@expected_failures(DeployError, AccountError, SpecError)
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
    access = check_permissions([spec], accounts, "plan" if dry_run else "deploy")
    if any(row.blocked for row in access):
        plan = make_plan(spec, accounts, Inspection(), access)
        _publish_plan(spec, plan)
        raise DeployError(refusal(access), plan)
    # One run per app at a time, from inspection to the verified app (dry runs only read).
    lock = app_lock(spec, accounts.app_uid)
    with quota.paced(accounts.app_uid, spec.app.region):
        quota.take_ahead()  # inspection's first SAE call: its slot is asked while the lock is taken
        with nullcontext() if dry_run else lock:
            found = inspect_all(spec, accounts)
            plan = make_plan(spec, accounts, found, access)
            running = found.of(application.STEP).current.get("ImageUrl")
            pushed = found.of(image.STEP)
            if skip_older and (
                later := image.pushed_later(accounts.registry, spec, pushed, running)
            ):
                logger.info("%s", later)
                return DeployResult("unchanged", later, plan, found.of(application.STEP).app_id)
            _publish_plan(spec, plan)
            logger.info("%s", plan.summary())
            if plan.blocked:
                reasons = "\n".join(f"  {r.step}: {r.reason}" for r in plan.blocked)
                raise DeployError(f"The plan is blocked; nothing was changed.\n{reasons}", plan)
            if dry_run:
                return DeployResult("planned", plan.summary() + " Dry run: nothing changed.", plan)

            ledger.migrate(spec, accounts.app_uid, retention=STEPS)  # an old-format one, moved once
            changes, landed = apply_access(spec, accounts, found)
            return land_app(spec, accounts, landed, plan, tuple(changes))
