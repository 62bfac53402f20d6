"""Teardown: remove what `cross_account_deploy` created for a spec, and nothing else.

It reverses the deploy's ledger (see crossdeploy/audit.py) step by step, app first (so the pull
credentials outlive their last user), then the secret, the whitelist entries, the policy and the
role. A role or policy that existed before the deploy keeps everything but what the deploy added.
A write the ledger holds only as intended (the deploy died before recording it) is first
confirmed against the cloud (crossdeploy/write_ahead.py) and then reversed like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from crossdeploy import audit, quota, write_ahead
from crossdeploy.plan import Change
from crossdeploy.planner import resolve_accounts
from crossdeploy.spec import DeploySpec
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


@flow(name="crossdeploy-teardown")
def teardown(spec: DeploySpec) -> TeardownResult:
    """Undo the recorded changes of the deploy of `spec`, newest resources first."""
    logger = get_run_logger()
    ledger, pending = audit.load_ledger(spec), audit.load_pending(spec)
    if not ledger and not pending:
        return TeardownResult((), f"No deploy of {spec.app.name} is recorded; nothing removed.")
    accounts = resolve_accounts(spec)
    with quota.paced(accounts.app_uid, spec.app.region):
        ledger += write_ahead.confirm(accounts, pending)
        removed: list[Change] = []
        removed += _remove_app(accounts.app, ledger, timeout_seconds=spec.rollout.timeout_seconds)
        removed += _remove_secret(accounts.app, ledger)
        removed += _remove_whitelist(accounts.registry, ledger)
        removed += _remove_policy(accounts.registry, ledger)
        removed += _remove_role(accounts.registry, ledger)
    audit.emit_changes(spec, accounts.uids, removed)
    audit.forget(spec)
    for change in removed:
        logger.info("%s %s %s", change.resource_type, change.resource_id, change.action)
    return TeardownResult(tuple(removed), f"Removed {len(removed)} change(s) of {spec.app.name}.")
