"""The parent's side of a fleet across workers: one child flow run per app on the work pool,
watched until each has an outcome, so no app is lost with a worker and the parent never waits
forever.

    start     `run_deployment(app_deployment, timeout=0)` per app: a `fleet-app` run linked to
              the fleet run as a subflow; any worker of the pool, on any machine, takes it. Its
              job variables ask for a Prefect flow-run heartbeat every `heartbeat_seconds`
    watch     every `poll_seconds`, one read of the children's states, one of their newest
              heartbeat events (Prefect's `prefect.flow-run.heartbeat`) and one of the outcomes
              of those that finished (the `fleet-app-outcome` artifacts, flows/fleet_outcome.py)
    stale     a child Running or Pending whose last sign of life (state change or heartbeat)
              is `stale_seconds` old has lost its worker (killed, machine gone): the parent
              marks it Crashed with that cause
    again     a child that crashed (marked so here or by its worker) is started once more; the
              app's lock and the child's inspection under it make that safe (an app already
              deployed is `unchanged`); a second crash is the app's outcome, failed with both
              causes
    deadline  a child not final `finish_seconds` after it was created (no worker took it, or it
              hangs) is cancelled and reported failed with that cause

Signs of life are compared by when the parent saw them change, not by timestamps, so the
parent's clock may differ from the server's and the workers'.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventResourceFilter,
)
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Crashed

from crossdeploy.prefect_api import patiently, quick_client
from crossdeploy.spec import DeploySpec
from flows.fleet_outcome import OUTCOME_KEY, AppOutcome, outcome_from_artifact, outcome_of

Key = tuple[str, str]
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
ATTEMPTS = 2
"""A crashed child is started once more, then reported."""
PAGE = 50
UNTAKEN_SECONDS = 60.0
"""A child Scheduled this long is worth a warning: no worker of the pool may be running."""


@dataclass(frozen=True)
class Watch:
    """How the parent watches its children (seconds)."""

    heartbeat_seconds: int = 30
    """Prefect's flow-run heartbeat, asked of every child (Prefect's minimum is 30)."""
    stale_seconds: float = 90.0
    """No sign of life for this long: the child's worker is gone."""
    poll_seconds: float = 2.0
    finish_margin_seconds: float = 900.0
    """A child may take its rollout timeout plus this (lock wait, start-up) before it is
    given up."""

    def __post_init__(self) -> None:
        if self.stale_seconds <= self.heartbeat_seconds:
            raise ValueError("stale_seconds must be longer than heartbeat_seconds")


@dataclass
class _Child:
    key: Key
    spec: DeploySpec
    parameters: dict[str, Any]
    run_id: UUID
    name: str
    attempt: int
    deadline: float
    sign: object = None
    sign_seen: float = field(default_factory=time.monotonic)
    causes: list[str] = field(default_factory=list)
    warned: bool = False


def missing_deployment(name: str) -> str | None:
    """Why runs of deployment `name` cannot be started (no such deployment), or None."""

    def read() -> str | None:
        with quick_client() as client:
            try:
                client.read_deployment_by_name(name)
            except ObjectNotFound:
                return (
                    f"no deployment {name!r} on the Prefect server: register it from the "
                    "repository root with `prefect --no-prompt deploy --all` (prefect.yaml "
                    "defines fleet-app/fleet-app), then run the fleet again; nothing was changed"
                )
            except ValueError as exc:  # not "flow-name/deployment-name"
                return f"app_deployment {name!r}: {exc}"
        return None

    return patiently(read)


def land_on_workers(
    deployment: str, jobs: Mapping[Key, tuple[DeploySpec, dict[str, Any]]], watch: Watch
) -> dict[Key, AppOutcome]:
    """Every app's outcome, each landed by a child flow run of `deployment`."""
    logger = get_run_logger()
    pending = {key: _start(deployment, key, *job, 1, watch) for key, job in jobs.items()}
    logger.info("%d app(s) handed to the work pool as %s runs", len(pending), deployment)
    outcomes: dict[Key, AppOutcome] = {}
    while pending:
        time.sleep(watch.poll_seconds)
        runs, beats, published = patiently(lambda: _look(list(pending.values())))
        for key, child in list(pending.items()):
            run = runs.get(child.run_id)
            if run is None or run.state is None:
                continue
            child.name = run.name  # named by fleet_app_run_name once it started
            verdict = _judge(child, run, beats.get(child.run_id), published, watch)
            if verdict is None:
                continue
            del pending[key]
            if isinstance(verdict, AppOutcome):
                outcomes[key] = verdict
                continue
            child.causes.append(verdict)
            if child.attempt < ATTEMPTS:
                logger.warning("%s: %s; starting it again", child.name, verdict)
                job = (child.spec, child.parameters)
                again = _start(deployment, key, *job, child.attempt + 1, watch)
                again.causes = child.causes
                pending[key] = again
            else:
                causes = "; then ".join(child.causes)
                message = f"its flow runs crashed {len(child.causes)} times: {causes}"
                outcomes[key] = outcome_of(child.spec, "failed", message)
    return {key: outcomes[key] for key in jobs}


def _start(
    deployment: str,
    key: Key,
    spec: DeploySpec,
    parameters: dict[str, Any],
    attempt: int,
    watch: Watch,
) -> _Child:
    env = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(watch.heartbeat_seconds)}
    run = run_deployment(
        deployment,
        parameters=parameters,
        timeout=0,
        as_subflow=True,
        job_variables={"env": env},
    )
    assert isinstance(run, FlowRun)  # called from a sync flow: the sync variant
    deadline = time.monotonic() + spec.rollout.timeout_seconds + watch.finish_margin_seconds
    return _Child(key, spec, parameters, run.id, run.name, attempt, deadline)


def _look(
    children: list[_Child],
) -> tuple[dict[UUID, FlowRun], dict[UUID, object], dict[UUID, AppOutcome]]:
    """The children's runs, each one's newest heartbeat, and the outcomes published."""
    runs: dict[UUID, FlowRun] = {}
    beats: dict[UUID, object] = {}
    published: dict[UUID, AppOutcome] = {}
    with quick_client() as client:
        for ids in _pages([c.run_id for c in children]):
            flt = FlowRunFilter(id=FlowRunFilterId(any_=ids))
            found = {r.id: r for r in client.read_flow_runs(flow_run_filter=flt, limit=len(ids))}
            final = [i for i, r in found.items() if r.state is not None and r.state.is_final()]
            alive = [i for i, r in found.items() if r.state is not None and not r.state.is_final()]
            runs |= found
            beats |= _heartbeats(client, alive)
            published |= _published(client, final)
    return runs, beats, published


def _pages(ids: list[UUID]) -> list[list[UUID]]:
    """At most PAGE ids a read: the server's page limit for events."""
    return [ids[i : i + PAGE] for i in range(0, len(ids), PAGE)]


def _heartbeats(client: SyncPrefectClient, ids: list[UUID]) -> dict[UUID, object]:
    if not ids:
        return {}
    resources = {f"prefect.flow-run.{i}": i for i in ids}
    flt = EventFilter(
        event=EventNameFilter(name=[HEARTBEAT_EVENT]),
        resource=EventResourceFilter(id=list(resources), distinct=True),
    )
    page = client.read_events(filter=flt, limit=len(ids))
    return {resources[e.resource.id]: e.id for e in page.events if e.resource.id in resources}


def _published(client: SyncPrefectClient, ids: list[UUID]) -> dict[UUID, AppOutcome]:
    if not ids:
        return {}
    flt = ArtifactFilter(
        key=ArtifactFilterKey(any_=[OUTCOME_KEY]), flow_run_id=ArtifactFilterFlowRunId(any_=ids)
    )
    found: dict[UUID, AppOutcome] = {}
    for artifact in client.read_artifacts(artifact_filter=flt):
        outcome = outcome_from_artifact(artifact.data)
        if artifact.flow_run_id is not None and outcome is not None:
            found[artifact.flow_run_id] = outcome
    return found


def _judge(
    child: _Child,
    run: FlowRun,
    beat: object,
    published: Mapping[UUID, AppOutcome],
    watch: Watch,
) -> AppOutcome | str | None:
    """The child's outcome; or why it crashed (start it again); or None: still going."""
    state = run.state
    assert state is not None
    if state.is_final():
        if child.run_id in published:
            return published[child.run_id]
        said = f"its flow run {run.name} ended {state.name}: {state.message or 'no message'}"
        if state.is_crashed():
            return said
        return outcome_of(child.spec, "failed", said)
    clock = time.monotonic()
    sign = (state.type, state.timestamp, beat)
    if sign != child.sign:
        child.sign, child.sign_seen = sign, clock
    if clock > child.deadline:
        cause = (
            f"its flow run {run.name} was still {state.name} after "
            f"{child.spec.rollout.timeout_seconds + watch.finish_margin_seconds:.0f} s; cancelled"
        )
        _set(run.id, Cancelled(message=cause))
        return outcome_of(child.spec, "failed", cause)
    quiet = clock - child.sign_seen
    if state.is_scheduled() and quiet > UNTAKEN_SECONDS and not child.warned:
        child.warned = True
        get_run_logger().warning(
            "%s: no worker has taken it for %.0f s; is a worker of its pool running?",
            run.name,
            quiet,
        )
    if (state.is_running() or state.is_pending()) and quiet > watch.stale_seconds:
        cause = (
            f"its flow run {run.name} was {state.name} with no heartbeat for {quiet:.0f} s: "
            "the worker that ran it, or its machine, is gone"
        )
        _set(run.id, Crashed(message=f"Marked Crashed by its fleet: {cause}"))
        return cause
    return None


def _set(run_id: UUID, state: Any) -> None:
    def put() -> None:
        with quick_client() as client:
            client.set_flow_run_state(run_id, state, force=True)

    patiently(put)
