"""Teardown: remove what `cross_account_deploy` created for a spec, and nothing else.

It reverses the deploy's ledger (see crossdeploy/ledger.py) step by step, walking the deploy's
steps backwards (flows/steps.py): the app first (so the pull credentials outlive their last
user), then the secret, the policy, the role and the whitelist entries, holding the app's lock
(crossdeploy/app_lock.py) so no deploy of the app runs meanwhile.
A role or policy that existed before the deploy keeps everything but what the deploy added.
A write the ledger holds only as intended (the deploy died before recording it) is first
confirmed against the cloud by its step (`Step.confirm`) and then reversed like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger

from crossdeploy import audit, ledger, quota
from crossdeploy.app_lock import app_lock
from crossdeploy.plan import Change
from crossdeploy.spec import DeploySpec
from flows.inspection import AccountError, resolve_accounts
from flows.permissions import PermissionsError, check_permissions, refusal
from flows.results import RESULT_SERIALIZER, expected_failures
from flows.run_names import teardown_run_name
from flows.steps import STEPS


@dataclass(frozen=True)
class TeardownResult:
    removed: tuple[Change, ...]
    message: str


@flow(
    name="crossdeploy-teardown",
    flow_run_name=teardown_run_name,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
@expected_failures(AccountError, PermissionsError)
def teardown(spec: DeploySpec) -> TeardownResult:
    """Undo the recorded changes of the deploy of `spec`, newest resources first."""
    logger = get_run_logger()
    accounts = resolve_accounts(spec)  # the ledger is account A's
    access = check_permissions([spec], accounts, "teardown")
    if any(row.blocked for row in access):
        raise PermissionsError(refusal(access))
    # no deploy of the app meanwhile: the ledger is read once a running one has finished
    with (
        app_lock(spec, accounts.app_uid),
        quota.paced(accounts.app_uid, spec.app.region),
    ):
        ledger.migrate(spec, accounts.app_uid, retention=STEPS)
        recorded = ledger.read(spec, accounts.app_uid)
        if not recorded.entries:
            return TeardownResult((), f"No deploy of {spec.app.name} is recorded; nothing removed.")
        changes = recorded.changes + STEPS.confirm(accounts, recorded.pending)
        changes = list(dict.fromkeys(changes))  # an intent settled by a run killed halfway
        removed: list[Change] = []
        for step in reversed(STEPS):
            if step.writes:
                removed += step.remove_task(accounts, spec, changes)
        audit.emit_changes(spec, accounts.uids, removed)
        ledger.forget(recorded)
    for change in removed:
        logger.info("%s %s %s", change.resource_type, change.resource_id, change.action)
    return TeardownResult(tuple(removed), f"Removed {len(removed)} change(s) of {spec.app.name}.")
