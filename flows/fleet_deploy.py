"""The fleet deploy: one image of account B rolled out to many SAE apps of account A, as fast as
SAE's API quota allows.

    plan      per namespace, both accounts at once (inspection.inspect_all), then every app; one
              markdown artifact; a blocked image, role or policy stops the fleet before any write
    shared    once for the fleet: the pull role + policy in B (trusted by A's SAE), one whitelist
              entry per distinct egress, or the registry secret per namespace (method secret)
    apps      each app deployed, its change order followed and verified, concurrently
              (landing.land_app) under the app's lock (re-inspected if another run
              held it first); a failed app is diagnosed and rolled back alone
    end       the result names every app's outcome; the run fails if any app failed or was
              blocked, naming each with the reason, after the others have landed

Every SAE call (polling included) first takes a slot of the Prefect rate limit
`sae-api:<account A uid>:<region>` (crossdeploy/quota.py), shared with every other flow of the
account; a missing limit is created from `quota_calls` per `quota_window_seconds` (SAE: 60 per
minute per account), an existing one is used as the operator set it. A re-run of an unchanged
fleet writes nothing. Shared changes are recorded in the ledger of
`fleet.shared_spec(namespace, region)`, each app's in its own, so `teardown` still works per app
(and for the shared resources).

Entry points (also what benchmarks call):

    fleet_deploy(fleet: FleetSpec, dry_run=False, quota_calls=60, quota_window_seconds=60.0,
                 max_parallel=None) -> FleetResult     # the Prefect flow; raises FleetError
    fleet_deploy(..., return_state=True)                # a Prefect State instead of raising
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from crossdeploy import ledger, quota
from crossdeploy.app_lock import app_lock
from crossdeploy.fleet_spec import FleetSpec
from crossdeploy.plan import Change, Plan, PlanRow
from crossdeploy.spec import DeploySpec, SpecError
from flows.fleet_children import Watch, land_on_workers, missing_deployment
from flows.fleet_outcome import (
    AppAccess,
    AppOutcome,
    AppOutcomeKind,
    failure,
    landing_outcome,
    outcome_of,
)
from flows.inspection import AccountError, inspect_all, make_plan, resolve_accounts
from flows.landing import ACCESS, DeployResult, apply_steps, land_app, with_landed
from flows.permissions import check_permissions, refusal
from flows.results import RESULT_SERIALIZER, expected_failures
from flows.run_names import fleet_run_name
from flows.steps import STEPS
from tasks import application, image, network, pull_role, registry_secret
from tasks.step import Accounts, Inspected, Inspection, Step

FLEET_WIDE = frozenset(step.name for step in STEPS if step.fleet_wide)
"""Steps shared by every app: one of them blocked blocks the whole fleet."""
__all__ = ["AppOutcome", "AppOutcomeKind", "FleetError", "FleetResult", "fleet_deploy"]


@dataclass(frozen=True)
class FleetResult:
    name: str
    plan: Plan
    apps: tuple[AppOutcome, ...]
    shared_changes: tuple[Change, ...] = ()

    @property
    def failed(self) -> tuple[AppOutcome, ...]:
        return tuple(a for a in self.apps if not a.ok)

    @property
    def writes(self) -> int:
        """Changes made: shared ones plus every app's."""
        return len(self.shared_changes) + sum(len(a.changes) for a in self.apps)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for app in self.apps:
            counts[app.outcome] = counts.get(app.outcome, 0) + 1
        parts = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        return f"Fleet {self.name}: {len(self.apps)} app(s): {parts}."

    def message(self) -> str:
        return "\n".join([self.summary(), *(f"  {a.line()}" for a in self.apps)])


@dataclass
class FleetError(Exception):
    """Some apps of the fleet did not land (or the fleet could not start); `message` names each
    with the reason, `result` has every app's outcome when the apps were planned."""

    message: str
    result: FleetResult | None = None
    plan: Plan | None = field(default=None)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"FleetError({self.message!r})"


@dataclass(frozen=True)
class _Namespace:
    """A namespace of the fleet: its shared spec and what inspecting it found."""

    spec: DeploySpec
    found: Inspection | None
    error: str = ""


# -- tasks: run on the fleet's own thread pool, each inside its region's rate limit ----------------


@task(name="fleet-inspect-namespace", task_run_name="inspect {label}", cache_policy=NO_CACHE)
def _inspect_namespace(
    label: str, spec: DeploySpec, accounts: Accounts, limit: quota.RateLimit
) -> _Namespace:
    with quota.limited(limit):
        try:
            return _Namespace(spec, inspect_all(spec, accounts))
        except Exception as exc:  # one namespace's failure is its apps' failure, not the fleet's
            return _Namespace(spec, None, failure(exc))


@task(name="fleet-inspect-app", task_run_name="inspect {label}", cache_policy=NO_CACHE)
def _inspect_app(
    label: str, spec: DeploySpec, accounts: Accounts, shared: Inspection, limit: quota.RateLimit
) -> Inspection | str:
    with quota.limited(limit):
        try:
            return _reinspect(spec, accounts, shared)
        except Exception as exc:
            return failure(exc)


def _reinspect(spec: DeploySpec, accounts: Accounts, shared: Inspection) -> Inspection:
    """The namespace's inspection with this app's own state."""
    app = application.STEP
    return shared.with_state(app, app.inspect_task(accounts, spec, shared))


@task(name="fleet-app", task_run_name="deploy {label}", cache_policy=NO_CACHE)
def _land(
    label: str,
    spec: DeploySpec,
    accounts: Accounts,
    found: Inspection,
    landed: Mapping[str, Inspected],
    limit: quota.RateLimit,
) -> AppOutcome:
    """Land one app; `landed` are its namespace's access states as applied."""
    plan = make_plan(spec, accounts, found)

    def land() -> DeployResult:
        with app_lock(spec, accounts.app_uid) as waited:
            # another run changed the app meanwhile: land it as it is now
            now = _reinspect(spec, accounts, found) if waited else found
            ledger.migrate(spec, accounts.app_uid, retention=STEPS)
            return land_app(spec, accounts, with_landed(spec, accounts, now, landed), plan)

    with quota.limited(limit):
        return landing_outcome(spec, land)


# -- the flow -------------------------------------------------------------------------------------


@flow(
    name="fleet-deploy",
    flow_run_name=fleet_run_name,
    log_prints=True,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
@expected_failures(FleetError, AccountError, SpecError)
def fleet_deploy(
    fleet: FleetSpec,
    dry_run: bool = False,
    quota_calls: int = 60,
    quota_window_seconds: float = 60.0,
    max_parallel: int | None = None,
    app_deployment: str | None = None,
    stale_seconds: float = 90.0,
) -> FleetResult:
    """Deploy one image from account B's ACR to every app of the fleet in account A.

    Args:
        fleet: The fleet spec: both accounts, the image, shared access and network, the apps.
        dry_run: Plan only: inspect both accounts and publish the plan; change nothing.
        quota_calls: SAE OpenAPI calls allowed per account and region in `quota_window_seconds`,
            for a rate limit not created yet (an existing one is used as it is set).
        quota_window_seconds: The quota's window (SAE: 60 calls in 60 s).
        max_parallel: Apps inspected and deployed at once (the quota paces them further);
            by default enough for their calls to use the whole quota (Quota.apps_in_flight).
        app_deployment: "fleet-app/<deployment>": land each app as a child flow run of this
            deployment on its work pool (any worker, any machine) instead of in this run; the
            plan and the shared access stay here. None: every app lands in this run.
        stale_seconds: With app_deployment: a child Running or Pending with no heartbeat for
            this long has lost its worker; it is marked Crashed and started once more.
    """
    logger = get_run_logger()
    specs = fleet.deploy_specs()
    accounts = resolve_accounts(specs[0])
    access = check_permissions(specs, accounts, "plan" if dry_run else "deploy")
    if any(row.blocked for row in access):
        plan = _fleet_plan(fleet, specs, accounts, {}, {}, access)
        raise FleetError(refusal(access), plan=plan)
    if app_deployment is not None and not dry_run:
        problem = missing_deployment(app_deployment)
        if problem:
            raise FleetError(problem)
    budget = quota.Quota(quota_calls, quota_window_seconds)
    limits = {
        region: quota.ensure_limit(quota.limit_name(accounts.app_uid, region), budget)
        for region in dict.fromkeys(s.app.region for s in specs)
    }
    workers = max_parallel or budget.apps_in_flight
    pool: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=workers)
    with pool:
        namespaces = _inspect_namespaces(pool, fleet, specs, accounts, limits)
        found = _inspect_apps(pool, specs, accounts, namespaces, limits)
        plan = _fleet_plan(fleet, specs, accounts, namespaces, found, access)
        create_markdown_artifact(
            plan.to_markdown(), key=f"fleet-plan-{fleet.name}", description=plan.summary()
        )
        logger.info("%s", plan.summary())
        blocked = [r for ns in namespaces.values() if ns.found for r in _fleet_wide(ns.found)]
        if blocked:
            reasons = "\n".join(f"  {r.step}: {r.reason}" for r in dict.fromkeys(blocked))
            raise FleetError(f"The fleet is blocked; nothing was changed.\n{reasons}", plan=plan)
        verdicts = {_key(s): _verdict(s, namespaces, found) for s in specs}
        if dry_run:
            result = FleetResult(fleet.name, plan, tuple(verdicts.values()))
            return _finish(result, dry_run=True)
        ready = [s for s in specs if verdicts[_key(s)].ok]
        shared, landed = _apply_shared(fleet, accounts, namespaces, ready, limits)
        if app_deployment is not None:
            jobs = {
                _key(spec): (spec, _child_parameters(spec, namespaces, landed, budget))
                for spec in ready
            }
            watch = Watch(stale_seconds=stale_seconds)
            verdicts.update(land_on_workers(app_deployment, jobs, watch))
            result = FleetResult(fleet.name, plan, tuple(verdicts.values()), shared)
            return _finish(result, dry_run=False)
        futures = {
            key: pool.submit(
                _land,
                {
                    "label": f"{spec.app.name} ({spec.app.namespace_id})",
                    "spec": spec,
                    "accounts": _in_region(accounts, spec.app.region),
                    "found": found[key],
                    "landed": landed.get(spec.app.namespace_id, {}),
                    "limit": limits[spec.app.region],
                },
            )
            for spec in ready
            for key in [_key(spec)]
        }
        for key, future in futures.items():
            verdicts[key] = future.result()
    return _finish(FleetResult(fleet.name, plan, tuple(verdicts.values()), shared), dry_run=False)


# -- phases ---------------------------------------------------------------------------------------


def _inspect_namespaces(
    pool: ThreadPoolTaskRunner[Any],
    fleet: FleetSpec,
    specs: list[DeploySpec],
    accounts: Accounts,
    limits: dict[str, quota.RateLimit],
) -> dict[str, _Namespace]:
    where = {s.app.namespace_id: s.app.region for s in specs}
    futures = {
        ns: pool.submit(
            _inspect_namespace,
            {
                "label": ns,
                "spec": fleet.shared_spec(ns, region),
                "accounts": _in_region(accounts, region),
                "limit": limits[region],
            },
        )
        for ns, region in where.items()
    }
    return {ns: future.result() for ns, future in futures.items()}


def _inspect_apps(
    pool: ThreadPoolTaskRunner[Any],
    specs: list[DeploySpec],
    accounts: Accounts,
    namespaces: dict[str, _Namespace],
    limits: dict[str, quota.RateLimit],
) -> dict[tuple[str, str], Inspection | str]:
    futures = {}
    for spec in specs:
        shared = namespaces[spec.app.namespace_id].found
        if shared is None or shared.of(network.STEP).blocked:
            continue
        futures[_key(spec)] = pool.submit(
            _inspect_app,
            {
                "label": f"{spec.app.name} ({spec.app.namespace_id})",
                "spec": spec,
                "accounts": _in_region(accounts, spec.app.region),
                "shared": shared,
                "limit": limits[spec.app.region],
            },
        )
    return {key: future.result() for key, future in futures.items()}


def _apply_shared(
    fleet: FleetSpec,
    accounts: Accounts,
    namespaces: dict[str, _Namespace],
    ready: list[DeploySpec],
    limits: dict[str, quota.RateLimit],
) -> tuple[tuple[Change, ...], dict[str, dict[str, Inspected]]]:
    """Role and policy once, one whitelist entry per distinct egress, the secret per namespace;
    only for the namespaces that have an app to deploy. Returns the changes and each
    namespace's access states as they landed."""
    used = [namespaces[ns] for ns in dict.fromkeys(s.app.namespace_id for s in ready)]
    inspected = [(ns.spec, ns.found) for ns in used if ns.found is not None]
    changes: list[Change] = []
    landed: dict[str, dict[str, Inspected]] = {}
    if not inspected:
        return (), landed
    first_spec, first = inspected[0]
    for spec, _ in inspected:
        ledger.migrate(spec, accounts.app_uid, retention=STEPS)
    once = {s: first.of(s) for s in ACCESS if s.fleet_wide and s.name in first.states}
    if once:
        changes += apply_steps(first_spec, accounts, once)[0]
    before: dict[str, list[Inspected]] = {}
    for spec, found in inspected:
        states: dict[Step[Any, Any], Inspected] = {}
        for step in ACCESS:
            if not step.fleet_wide and step.name in found.states:
                done = before.setdefault(step.name, [])
                states[step] = step.remaining(found.of(step), done)
                done.append(found.of(step))
        with quota.limited(limits[spec.app.region]):
            entries, landed[spec.app.namespace_id] = apply_steps(
                spec, _in_region(accounts, spec.app.region), states
            )
        changes += entries
    return tuple(changes), landed


def _child_parameters(
    spec: DeploySpec,
    namespaces: dict[str, _Namespace],
    landed: dict[str, dict[str, Inspected]],
    budget: quota.Quota,
) -> dict[str, Any]:
    """A `fleet-app` run's parameters, JSON: the spec and what its namespace's access left."""
    ns = namespaces[spec.app.namespace_id]
    assert ns.found is not None  # only apps of inspected namespaces are ready
    merged = Inspection({**ns.found.states, **landed.get(spec.app.namespace_id, {})})
    net, role = merged.of(network.STEP), merged.get(pull_role.STEP)
    secret = merged.get(registry_secret.STEP)
    access = AppAccess(
        role_arn=role.role_arn if role else None,
        secret_id=secret.secret_id if secret else None,
        instance_id=merged.of(image.STEP).instance_id,
        vpc_id=net.vpc_id or None,
        vswitch_id=net.vswitch_id or None,
    )
    return {
        "spec": spec.model_dump(mode="json"),
        "access": access.model_dump(mode="json"),
        "quota_calls": budget.calls,
        "quota_window_seconds": budget.window_seconds,
    }


def _verdict(
    spec: DeploySpec,
    namespaces: dict[str, _Namespace],
    found: dict[tuple[str, str], Inspection | str],
) -> AppOutcome:
    """Planned, or blocked/failed with the reason, from the inspections alone."""
    ns = namespaces[spec.app.namespace_id]
    if ns.found is None:
        return outcome_of(spec, "failed", f"inspecting {spec.app.namespace_id} failed: {ns.error}")
    app = found.get(_key(spec))
    if isinstance(app, str):
        return outcome_of(spec, "failed", app)
    source = app if app is not None else ns.found
    own = application.STEP
    rows = [r for r in source.rows if r.blocked and (app is not None or r.step != own.name)]
    if rows:
        return outcome_of(spec, "blocked", "; ".join(f"{r.step}: {r.reason}" for r in rows))
    state = app.of(own) if app else None
    action = state.action if state else "?"
    return outcome_of(spec, "planned", f"app: {action}", state.app_id if state else None)


def _fleet_plan(
    fleet: FleetSpec,
    specs: list[DeploySpec],
    accounts: Accounts,
    namespaces: dict[str, _Namespace],
    found: dict[tuple[str, str], Inspection | str],
    first: Sequence[PlanRow] = (),
) -> Plan:
    """The `first` rows (the permissions), shared rows once (identical rows of several
    namespaces merged), then one row per app."""
    rows: list[PlanRow] = list(first)
    for ns in namespaces.values():
        if ns.found is not None:
            rows += [r for r in ns.found.rows if r.step != application.STEP.name]
    for spec in specs:
        app = found.get(_key(spec))
        if isinstance(app, Inspection):
            rows += app.of(application.STEP).rows
    title = f"Fleet {fleet.name}: {fleet.image.url} to {len(specs)} app(s)"
    subtitle = (
        f"account A {accounts.app_uid} ({fleet.accounts.app})  ·  "
        f"account B {accounts.registry_uid} ({fleet.accounts.registry})  ·  "
        f"{len(namespaces)} namespace(s)"
    )
    return Plan(title, subtitle, list(dict.fromkeys(rows)))


def _finish(result: FleetResult, *, dry_run: bool) -> FleetResult:
    logger = get_run_logger()
    for app in result.apps:
        (logger.info if app.ok else logger.error)("%s", app.line())
    if not result.failed:
        return result
    did = "planned" if dry_run else "landed"
    head = (
        f"{len(result.failed)} of {len(result.apps)} app(s) of fleet {result.name} did not "
        f"{'plan' if dry_run else 'land'}; the other {len(result.apps) - len(result.failed)} "
        f"{did} as reported."
    )
    lines = [head, *(f"  {a.line()}" for a in result.failed)]
    raise FleetError("\n".join(lines), result, result.plan)


# -- helpers --------------------------------------------------------------------------------------


def _fleet_wide(found: Inspection) -> Iterable[PlanRow]:
    return (r for r in found.rows if r.blocked and r.step in FLEET_WIDE)


def _in_region(accounts: Accounts, region: str) -> Accounts:
    """Account A's clients in the app's region (SAE endpoints are regional)."""
    if accounts.app.region_id == region:
        return accounts
    return replace(accounts, app=accounts.app.in_region(region))


def _key(spec: DeploySpec) -> tuple[str, str]:
    return spec.app.namespace_id, spec.app.name
