"""One app of a fleet, as its own flow run: what `fleet_deploy(app_deployment=...)` starts on the
work pool, one per app, so any number of workers on any number of machines share a fleet.

The parent (flows/fleet_deploy.py) planned the fleet and applied its shared access (role and
policy, whitelist, secrets); this flow lands one app with what that access left (`AppAccess`):

    resolve    both blocks by name, both uids (no SAE call)
    lock       the app's lock (crossdeploy/app_lock.py): a re-run of a crashed child waits for, or
               frees, the one before it, so an app is never deployed by two runs at once
    inspect    the app alone, under the lock (2 SAE calls): what the run before did is seen, so
               a re-run converges (an app already deployed is `unchanged`)
    land       deploy, follow, verify; on failure diagnose and roll back (landing.land_app)
    report     its AppOutcome as the artifact `fleet-app-outcome` on this flow run, the channel
               the parent reads (this run's own result stays on the worker's machine)

Every SAE call takes a slot of the same Prefect rate limit as the parent's and every other run of
account A in the region (`sae-api:<uid>:<region>`, crossdeploy/quota.py), whichever machine it
runs on. The run ends Failed with the outcome's message when the app did not land.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from crossdeploy import ledger, quota
from crossdeploy.app_lock import app_lock
from crossdeploy.spec import DeploySpec, SpecError
from flows.fleet_outcome import OUTCOME_KEY, AppAccess, AppOutcome, landing_outcome
from flows.inspection import AccountError, make_plan, resolve_accounts
from flows.landing import DeployResult, land_app
from flows.results import RESULT_SERIALIZER, expected_failures
from flows.run_names import fleet_app_run_name
from flows.steps import STEPS
from tasks import application
from tasks.step import Accounts, Inspection


@task(name="fleet-inspect-app", task_run_name="inspect {spec.app.name}", cache_policy=NO_CACHE)
def inspect_app(spec: DeploySpec, accounts: Accounts, access: AppAccess) -> Inspection:
    """The app's own state, with what the shared steps landed (no other step read again)."""
    state = application.inspect_application(
        accounts.app,
        spec,
        role_arn=access.role_arn,
        secret_id=access.secret_id,
        instance_id=access.instance_id,
        vpc_id=access.vpc_id,
        vswitch_id=access.vswitch_id,
    )
    return Inspection({application.STEP.name: state})


@flow(
    name="fleet-app",
    flow_run_name=fleet_app_run_name,
    log_prints=True,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
@expected_failures(AccountError, SpecError)
def fleet_app(
    spec: DeploySpec,
    access: AppAccess,
    quota_calls: int = 60,
    quota_window_seconds: float = 60.0,
) -> AppOutcome | State[AppOutcome]:
    """Deploy one app of a fleet whose shared access is in place; publish its outcome.

    Args:
        spec: The app's deploy spec (the fleet's shared sections with this app).
        access: What the app pulls with (role ARN or secret id, ACR instance, VPC, vSwitch).
        quota_calls: SAE calls per window for the account's rate limit, if it is missing.
        quota_window_seconds: The quota's window.
    """
    outcome = _land(spec, access, quota.Quota(quota_calls, quota_window_seconds))
    create_table_artifact(
        [outcome.row()], key=OUTCOME_KEY, description=f"{outcome.outcome}: {outcome.name}"
    )
    if outcome.ok:
        return outcome
    return Failed(message=outcome.line(), data=outcome)


def _land(spec: DeploySpec, access: AppAccess, budget: quota.Quota) -> AppOutcome:
    def land() -> DeployResult:
        accounts = resolve_accounts(spec)
        with (
            quota.paced(accounts.app_uid, spec.app.region, budget),
            app_lock(spec, accounts.app_uid),
        ):
            found = inspect_app(spec, accounts, access)
            ledger.migrate(spec, accounts.app_uid, retention=STEPS)
            return land_app(spec, accounts, found, make_plan(spec, accounts, found))

    return landing_outcome(spec, land)
