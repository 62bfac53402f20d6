"""Helpers for the end-to-end deploy tests: specs, blocks, flow runs, and what Prefect recorded.

The flows run in this process against the session's Prefect test server (`prefect_harness`) and
a sandbox cloud; nothing here mocks the SDKs or Prefect. `normalized` makes two sandbox state
dumps comparable: it drops timestamps and the change-order history (SAE keeps a deleted app's
change orders as records; no API removes them) and compares policy documents as data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterStartTime,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import Artifact, Log, State, Variable
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect.events.schemas.events import ReceivedEvent
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from pydantic import SecretStr

from blocks import AcrRegistryLogin
from cli.sandbox_blocks import save_sandbox_blocks
from crossdeploy import ledger
from crossdeploy.quota import Quota, limit_name, set_limit
from crossdeploy.spec import DeploySpec
from flows.cross_account_deploy import cross_account_deploy
from flows.landing import DeployError, DeployResult
from flows.teardown import TeardownResult, teardown
from tests.support.clients import KEYS, SdkFactory, sandbox_credentials
from tests.support.sae_setup import unwhitelist

APP_UID = "1111111111111111"
REGISTRY_UID = "2222222222222222"
EIP = "47.96.10.20"
ROLE_ARN = f"acs:ram::{REGISTRY_UID}:role/sae-pull-shop-web"
EE_LOGIN = ("registry@2222222222222222", "sandbox-registry-login")
PERSONAL_LOGIN = ("registry-personal@2222222222222222", "sandbox-personal-login")
PERSONAL_IMAGE = "registry.cn-hangzhou.aliyuncs.com/shop-personal/web:1.0"
SECRETS = (EE_LOGIN[1], PERSONAL_LOGIN[1], *(secret for _, secret in KEYS.values()))
"""Registry passwords and access key secrets: none may show up anywhere Prefect keeps text."""

LOGIN_BLOCKS = {"acr-login": EE_LOGIN, "acr-personal-login": PERSONAL_LOGIN}


# -- specs and blocks ------------------------------------------------------------------------------


def secret_access(block: str = "acr-login") -> dict[str, Any]:
    return {"method": "secret", "registry_login": block}


def personal_image(url: str = PERSONAL_IMAGE) -> dict[str, Any]:
    return {"url": url, "instance_id": None}


def save_blocks(url: str, *, app: str = "sandbox-app", registry: str = "sandbox-registry") -> None:
    """Credential blocks for both accounts and the registry-login blocks, against `url`."""
    if (app, registry) == ("sandbox-app", "sandbox-registry"):
        save_sandbox_blocks(url)
    else:
        sandbox_credentials(url, "app").save(app, overwrite=True)
        sandbox_credentials(url, "registry").save(registry, overwrite=True)
    for name, (username, password) in LOGIN_BLOCKS.items():
        AcrRegistryLogin(username=username, password=SecretStr(password)).save(name, overwrite=True)


def _crossdeploy_variables() -> list[Variable]:
    """Every Prefect Variable named crossdeploy-... (ledger entries, old-format ledgers)."""
    found: list[Variable] = []
    with get_client(sync_client=True) as client:
        while True:
            body = {"variables": {"name": {"like_": "crossdeploy-"}}, "offset": len(found)}
            page = Variable.model_validate_list(
                client.request("POST", "/variables/filter", json=body).json()
            )
            found += page
            if not page:
                return [v for v in found if v.name.startswith("crossdeploy-")]


def forget_ledgers() -> None:
    """Delete every deploy ledger (Prefect Variables named crossdeploy-...)."""
    with get_client(sync_client=True) as client:
        for variable in _crossdeploy_variables():
            client.delete_variable_by_name(variable.name)


def ledgers() -> dict[str, list[Any]]:
    """Every ledger's entries in the order written, by ledger id (`<A uid>:<namespace>:<app>`);
    an old-format ledger by its Variable's name."""
    out: dict[str, list[tuple[Any, Any]]] = {}
    for variable in _crossdeploy_variables():
        keys = [t.removeprefix(f"{ledger.TAG}:") for t in variable.tags if t != ledger.TAG]
        key = keys[0] if keys else variable.name
        out.setdefault(key, []).append((variable.created, variable.value))
    return {key: [value for _, value in sorted(entries)] for key, entries in out.items()}


def write_spec(path: Path, spec: DeploySpec | dict[str, Any]) -> Path:
    data = spec.model_dump(exclude_none=True) if isinstance(spec, DeploySpec) else spec
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- the SAE quota ---------------------------------------------------------------------------------

AMPLE_QUOTA = Quota(6000, 60.0)
"""The test account's SAE rate limits as the tests' operator sets them: the sandbox's minutes
are scaled down (a change order in 0.6 s), so SAE's 60 a minute would make every test wait for
slots; every SAE call still takes one."""
TEST_REGIONS = ("cn-hangzhou", "cn-shanghai", "cn-beijing")


def open_sae_quota(quota: Quota = AMPLE_QUOTA, regions: Iterable[str] = TEST_REGIONS) -> None:
    """Set the test account's SAE limits, as an operator would (`prefect gcl update`)."""
    for region in regions:
        set_limit(limit_name(APP_UID, region), quota)


@contextmanager
def sae_quota(quota: Quota, *regions: str) -> Iterator[None]:
    """The test account's SAE limits in `regions` set to `quota`, then back to AMPLE_QUOTA."""
    open_sae_quota(quota, regions)
    try:
        yield
    finally:
        open_sae_quota(AMPLE_QUOTA, regions)


# -- running the flows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run of the deploy flow: its final state, its id, and what it returned or raised."""

    state: State[Any]
    flow_run_id: UUID

    @property
    def result(self) -> DeployResult:
        error = None if self.state.is_completed() else self.state.result(raise_on_failure=False)
        assert self.state.is_completed(), f"deploy ended {self.state.name}: {error}"
        result = self.state.result()
        assert isinstance(result, DeployResult)
        return result

    @property
    def error(self) -> DeployError:
        assert self.state.is_failed(), f"deploy ended {self.state.name}, not Failed"
        error = self.state.result(raise_on_failure=False)
        assert isinstance(error, DeployError), repr(error)
        return error


def deploy(spec: DeploySpec, *, dry_run: bool = False) -> Run:
    state: State[Any] = cross_account_deploy(spec=spec, dry_run=dry_run, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return Run(state, flow_run_id)


@dataclass(frozen=True)
class Teardown:
    result: TeardownResult
    flow_run_id: UUID


def tear_down(spec: DeploySpec) -> Teardown:
    state: State[Any] = teardown(spec=spec, return_state=True)
    assert state.is_completed(), f"teardown ended {state.name}: {state.result(False)}"
    result = state.result()
    assert isinstance(result, TeardownResult)
    assert state.state_details.flow_run_id is not None
    return Teardown(result, state.state_details.flow_run_id)


# -- what Prefect recorded -------------------------------------------------------------------------


def flow_runs_since(when: datetime) -> list[UUID]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime.model_validate({"after_": when})
            )
        )
    return [run.id for run in runs]


def state_messages(flow_run_ids: Iterable[UUID]) -> list[str]:
    """The final state message of each flow run (a failed run's names its exception)."""
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(flow_run_id) for flow_run_id in flow_run_ids]
    return [str(run.state.message if run.state else "") for run in runs]


def as_read_back(flow_run_id: UUID) -> tuple[str, Any, str]:
    """A flow run as another client sees it: its name, its result loaded from the result
    storage (an error for a failed run), and the stored result's text."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    assert run.state is not None
    storage_key = getattr(run.state.data, "storage_key", None)  # a ResultRecordMetadata
    assert storage_key, f"{run.name}: no persisted result"
    text = Path(storage_key).read_text()
    return run.name, run.state.result(raise_on_failure=False), text


def logs_of(flow_run_ids: Iterable[UUID]) -> list[Log]:
    APILogWorker.drain_all(timeout=5)
    ids = list(flow_run_ids)
    out: list[Log] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200, offset=len(out)
            )
            out += page
            if len(page) < 200:
                return out


def artifacts_of(flow_run_ids: Iterable[UUID]) -> list[Artifact]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids))
            )
        )


def events_of(flow_run_id: UUID, *, at_least: int, timeout: float = 15) -> list[ReceivedEvent]:
    """The crossdeploy.* events a flow run emitted, once the server has stored `at_least`."""
    EventsWorker.drain_all()
    wanted = EventFilter(
        event=EventNameFilter(prefix=["crossdeploy."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(wanted, limit=50)
            events = list(page.events)
            while page.next_page is not None:
                page = client.read_events_page(str(page.next_page))
                events += page.events
            if len(events) >= at_least or time.monotonic() > deadline:
                return events
            time.sleep(0.2)


# -- the sandbox -----------------------------------------------------------------------------------

_VOLATILE = re.compile(r"(_ms|_at|Time|Date)$")
HISTORY = frozenset({"sae_change_order"})


def normalized(state: dict[str, Any]) -> dict[str, Any]:
    """Both accounts' resources without timestamps and change-order history; JSON text (policy
    documents) parsed, so equal documents compare equal however they are spaced."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if not _VOLATILE.search(k) and k not in HISTORY
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and value[:1] in "{[":
            try:
                return clean(json.loads(value))
            except ValueError:
                return value
        return value

    return {account: clean(state[account]) for account in ("app", "registry")}


def unwhitelist_eip(sdk: SdkFactory) -> None:
    """Take the demo app's EIP off cri-demo's internet ACL by hand (a pull will then fail)."""
    unwhitelist(sdk, f"{EIP}/32")


def app_status(sdk: SdkFactory, app_id: str) -> tuple[str, int, dict[str, int], str]:
    """(current status, running instances, instance statuses, image) of an app, via the SDK."""
    from alibabacloud_sae20190506 import models as sae_models

    from tests.support.sae_setup import instances, status

    now = status(sdk, app_id)
    counts: dict[str, int] = {}
    for instance in instances(sdk, app_id):
        key = str(instance.instance_container_status)
        counts[key] = counts.get(key, 0) + 1
    request = sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    image = sdk.sae().describe_application_config(request).body.data.image_url
    return str(now.current_status), int(now.running_instances), counts, str(image)


def actions(run: Run | DeployResult | DeployError) -> dict[str, str]:
    """Plan step -> action (the first row of each step)."""
    plan = run.plan if not isinstance(run, Run) else run.result.plan
    assert plan is not None
    out: dict[str, str] = {}
    for row in plan.rows:
        out.setdefault(row.step, row.action)
    return out


def leaked(texts: Iterable[str]) -> list[str]:
    """The secrets that occur in any of `texts`."""
    joined = "\n".join(texts)
    return [secret for secret in SECRETS if secret in joined]
