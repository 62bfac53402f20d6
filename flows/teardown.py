"""Teardown: remove what `cross_account_deploy` created for a spec, and nothing else.

It reverses the deploy's ledger (see crossdeploy/ledger.py) step by step, app first (so the pull
credentials outlive their last user), then the secret, the whitelist entries, the policy and the
role, holding the app's lock (crossdeploy/app_lock.py) so no deploy of the app runs meanwhile.
A role or policy that existed before the deploy keeps everything but what the deploy added.
A write the ledger holds only as intended (the deploy died before recording it) is first
confirmed against the cloud (crossdeploy/write_ahead.py) and then reversed like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from crossdeploy import audit, ledger, quota, write_ahead
from crossdeploy.app_lock import app_lock
from crossdeploy.plan import Change
from crossdeploy.planner import resolve_accounts
from crossdeploy.spec import DeploySpec
from flows.results import RESULT_SERIALIZER
from flows.run_names import teardown_run_name
from tasks.application import remove_application
from tasks.pull_policy import remove_pull_policy
from tasks.pull_role import remove_pull_role
from tasks.registry_secret import remove_registry_secret
from tasks.whitelist import remove_whitelist


@dataclass(frozen=True)
class TeardownResult:
    removed: tuple[Change, ...]
    message: str


_remove_app = task(name="remove-application", cache_policy=NO_CACHE)(remove_application)
_remove_secret = task(name="remove-registry-secret", cache_policy=NO_CACHE)(remove_registry_secret)
_remove_whitelist = task(name="remove-whitelist", cache_policy=NO_CACHE)(remove_whitelist)
_remove_policy = task(name="remove-pull-policy", cache_policy=NO_CACHE)(remove_pull_policy)
_remove_role = task(name="remove-pull-role", cache_policy=NO_CACHE)(remove_pull_role)


@flow(
    name="crossdeploy-teardown",
    flow_run_name=teardown_run_name,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def teardown(spec: DeploySpec) -> TeardownResult:
    """Undo the recorded changes of the deploy of `spec`, newest resources first."""
    logger = get_run_logger()
    accounts = resolve_accounts(spec)  # the ledger is account A's
    run_id = flow_run.get_id()
    with (
        app_lock(
            spec,
            accounts.app_uid,
            flow_run_id=UUID(run_id) if run_id else None,
            wait_seconds=spec.rollout.timeout_seconds + 600,
        ),  # no deploy of the app meanwhile: the ledger is read once a running one has finished
        quota.paced(accounts.app_uid, spec.app.region),
    ):
        ledger.migrate(spec, accounts.app_uid)
        recorded = ledger.read(spec, accounts.app_uid)
        if not recorded.entries:
            return TeardownResult((), f"No deploy of {spec.app.name} is recorded; nothing removed.")
        changes = recorded.changes + write_ahead.confirm(accounts, recorded.pending)
        changes = list(dict.fromkeys(changes))  # an intent settled by a run killed halfway
        removed: list[Change] = []
        removed += _remove_app(accounts.app, changes, timeout_seconds=spec.rollout.timeout_seconds)
        removed += _remove_secret(accounts.app, changes)
        removed += _remove_whitelist(accounts.registry, changes)
        removed += _remove_policy(accounts.registry, changes)
        removed += _remove_role(accounts.registry, changes)
        audit.emit_changes(spec, accounts.uids, removed)
        ledger.forget(recorded)
    for change in removed:
        logger.info("%s %s %s", change.resource_type, change.resource_id, change.action)
    return TeardownResult(tuple(removed), f"Removed {len(removed)} change(s) of {spec.app.name}.")
