"""The `reconcile` flow: plan every spec, report drift (one artifact, one event per drifted spec),
apply only when asked, never apply a BLOCKED spec.

Runs the flow in this process against the session's Prefect test server and the fast sandbox.
Events are captured with Prefect's own asserting events client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from alibabacloud_sae20190506 import models as sae_models
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import State
from prefect.events import Event
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from cli.sandbox_blocks import save_sandbox_blocks
from crossdeploy.audit import DRIFT_EVENT
from crossdeploy.spec import DeploySpec
from flows.reconcile import ARTIFACT_KEY, ReconcileError, ReconcileResult, reconcile
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.deploy_support import as_read_back
from tests.support.specs import make_spec as spec

TABLE_HEADER = "| spec / app | step | account | now | wanted | action |"


DEMO = spec()
BLOCKED_SPEC = spec(
    app={"name": "shop-api"},
    image={"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:9.9"},
)
"""A tag the registry does not have: the image step is BLOCKED."""


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorker]:
    """Every event emitted in this process, kept by Prefect's asserting client."""
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_a, **_k: worker)
    yield worker
    worker.drain()


def drift_events(worker: EventsWorker) -> list[Event]:
    worker.wait_until_empty()
    client = worker._client
    assert isinstance(client, AssertingEventsClient)
    return [e for e in client.events if e.event == DRIFT_EVENT]


@pytest.fixture
def world(
    prefect_harness: None, fast_sandbox_process: SandboxProcess, fast_admin: SandboxAdmin
) -> SandboxAdmin:
    save_sandbox_blocks(fast_sandbox_process.url)
    return fast_admin


def run(specs: list[DeploySpec], *, apply: bool) -> State[ReconcileResult]:
    state = reconcile(specs=specs, apply=apply, return_state=True)
    assert isinstance(state, State)
    return state


def run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def artifacts(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        )


def drift_table(flow_run_id: UUID) -> str:
    """The run's one reconcile artifact."""
    found = [a for a in artifacts(flow_run_id) if a.key == ARTIFACT_KEY]
    assert len(found) == 1, [a.key for a in artifacts(flow_run_id)]
    return str(found[0].data)


def app_names(sdk: SdkFactory) -> set[str]:
    listed = sdk.sae().list_applications(sae_models.ListApplicationsRequest())
    return {a.app_name for a in listed.body.data.applications}


def test_plan_only_reports_drift_and_blocked_specs_without_writing(
    world: SandboxAdmin, events: EventsWorker
) -> None:
    state = run([DEMO, BLOCKED_SPEC], apply=False)
    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, ReconcileResult)
    statuses = {s.app: s.status for s in result.specs}
    assert statuses == {
        "cn-hangzhou:demo/shop-web": "drifted",
        "cn-hangzhou:demo/shop-api": "blocked",
    }
    assert all(s.applied is None for s in result.specs)
    web = result.specs[0]
    assert ("app", "A", "create") in {(s.step, s.account, s.action) for s in web.steps}
    assert {s.step for s in web.steps} >= {"role", "policy", "whitelist", "app"}
    assert world.writes() == []

    table = drift_table(run_id(state))
    assert TABLE_HEADER in table
    assert "| cn-hangzhou:demo/shop-web | app | A | missing |" in table
    assert "| cn-hangzhou:demo/shop-api | image | B |" in table
    assert "shop-api** image BLOCKED:" in table
    assert "blocked: not applied" in table
    assert "plan only (apply=false)" in table

    drifts = {e.resource.id: e for e in drift_events(events)}
    assert set(drifts) == {"sae.app.cn-hangzhou:demo.shop-web", "sae.app.cn-hangzhou:demo.shop-api"}
    web_event = drifts["sae.app.cn-hangzhou:demo.shop-web"]
    assert web_event.resource["prefect.resource.name"] == "shop-web"
    assert web_event.resource["acs.account"] == "1111111111111111"
    assert web_event.payload["blocked"] is False
    steps = {(s["step"], s["action"]) for s in web_event.payload["steps"]}
    assert ("app", "create") in steps
    api_event = drifts["sae.app.cn-hangzhou:demo.shop-api"]
    assert api_event.payload["blocked"] is True
    assert {"step": "image", "action": "BLOCKED"}.items() <= next(
        s for s in api_event.payload["steps"] if s["step"] == "image"
    ).items()


def test_apply_deploys_only_the_drifted_specs_as_subflows(
    world: SandboxAdmin, fast_sdk: SdkFactory, events: EventsWorker
) -> None:
    state = run([DEMO, BLOCKED_SPEC], apply=True)
    assert state.is_completed(), state.message
    result = state.result()
    outcome = {s.app: (s.status, s.applied) for s in result.specs}
    assert outcome == {
        "cn-hangzhou:demo/shop-web": ("drifted", "deployed"),
        "cn-hangzhou:demo/shop-api": ("blocked", None),
    }
    assert "shop-web is RUNNING" in result.specs[0].message
    assert app_names(fast_sdk) == {"shop-web"}  # the BLOCKED spec was not applied

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id(state)])
            )
        )
    assert len(children) == 1
    assert children[0].parameters["spec"]["app"]["name"] == "shop-web"
    assert children[0].state is not None and children[0].state.is_completed()

    table = drift_table(run_id(state))
    assert "**cn-hangzhou:demo/shop-web**: applied: deployed." in table
    assert "applied 1" in table

    # Nothing drifts any more: no event, no subflow, an artifact that says so.
    before = len(drift_events(events))
    again = run([DEMO], apply=True)
    assert again.is_completed(), again.message
    assert [(s.status, s.applied) for s in again.result().specs] == [("in-sync", None)]
    assert len(drift_events(events)) == before
    assert "No drift: every spec matches its live state." in drift_table(run_id(again))

    # A changed spec drifts at the app step only.
    bigger = spec(app={"replicas": 3})
    changed = run([bigger], apply=False)
    (report,) = changed.result().specs
    assert report.status == "drifted"
    assert [(s.step, s.account) for s in report.steps] == [("app", "A")]


def test_a_spec_that_cannot_be_planned_fails_the_run_after_reporting(
    world: SandboxAdmin, events: EventsWorker
) -> None:
    missing = spec(accounts={"app": "no-such-block", "registry": "sandbox-registry"})
    state = run([missing, DEMO], apply=False)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ReconcileError) and error.result is not None
    assert [s.status for s in error.result.specs] == ["error", "drifted"]
    assert "no-such-block" in error.result.specs[0].message
    name, read_back, _ = as_read_back(run_id(state))  # as another client sees the run
    assert name == "reconcile-2-specs"
    assert isinstance(read_back, ReconcileError) and str(read_back) == str(error)
    table = drift_table(run_id(state))
    assert "could not be planned" in table
    assert "| cn-hangzhou:demo/shop-web | app | A | missing |" in table
    assert world.writes() == []
