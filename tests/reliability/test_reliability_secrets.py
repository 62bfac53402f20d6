"""Issue 6, secrets: no access key secret, STS token or registry password appears anywhere a user
or Prefect keeps text, after successful and failed runs.

One module-scoped journey on the fast sandbox runs every scenario and records, per scenario, the
CLI output, the exceptions' texts, and the flow runs it made. Each test then scans that
scenario's texts: the flow runs' logs, artifacts, events, task and flow run records (states,
messages, parameters), results, ledgers, and anything persisted under Prefect's local storage,
for every secret value the sandbox holds or issued (read from its loopback-only
`/_sandbox/secrets`, so the STS keys and tokens minted during the runs are included) and the
encoded forms a careless repr or a docker config would carry.
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.filters import EventFilter, EventRelatedFilter
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks import AlibabaCloudCredentials
from cli.main import app
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.deploy_support import (
    EE_LOGIN,
    PERSONAL_LOGIN,
    SECRETS,
    artifacts_of,
    deploy,
    flow_runs_since,
    forget_ledgers,
    ledgers,
    logs_of,
    save_blocks,
    secret_access,
    unwhitelist_eip,
    write_spec,
)
from tests.support.specs import DEMO_SPEC, make_spec

Record = Callable[[str, Any], None]
BAD_SECRET = "wrong-secret-value-5f1c9e"
UNKNOWN_KEY_SECRET = "unknown-key-secret-77aa31"
SCENARIOS = {
    "sts": "successful plan, deploy and teardown through the CLI, both blocks assuming a role "
    "(STS tokens issued)",
    "secret": "successful deploy with access.method secret (registry password) through the flow",
    "failed": "failed change order through the CLI: diagnosis, then rollback",
    "blocked": "blocked plan (namespace without egress) through the flow, dry run",
    "bad-secret": "a block with a wrong access key secret (SignatureDoesNotMatch)",
    "unknown-key": "a block with an unknown access key id (InvalidAccessKeyId.NotFound)",
}


@dataclass
class Scenario:
    flow_run_ids: list[UUID] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    """CLI output, exception texts and results seen in this process."""
    outcome: str = ""


@dataclass
class Journey:
    scenarios: dict[str, Scenario]
    secrets: list[str]
    started: datetime


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _roles(sdk: SdkFactory) -> None:
    """B's `deployer` role for A's keys, A's `operator` role for B's keys, with what each needs."""
    plan = {
        "registry": (
            "deployer",
            "app",
            ("AliyunRAMFullAccess", "AliyunContainerRegistryFullAccess"),
        ),
        "app": ("operator", "registry", ("AliyunSAEFullAccess", "AliyunVPCFullAccess")),
    }
    for owner, (name, trusted, policies) in plan.items():
        ram = sdk.ram(owner)
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{UIDS[trusted]}:root"]},
                }
            ],
        }
        ram.create_role(
            ram_models.CreateRoleRequest(
                role_name=name, assume_role_policy_document=json.dumps(trust)
            )
        )
        for policy in policies:
            ram.attach_policy_to_role(
                ram_models.AttachPolicyToRoleRequest(
                    policy_type="System", policy_name=policy, role_name=name
                )
            )


def _blocks(url: str, https_url: str) -> None:
    save_blocks(url)

    def block(account: str, **fields: Any) -> AlibabaCloudCredentials:
        key_id, secret = KEYS[account]
        values: dict[str, Any] = {"access_key_id": key_id, "access_key_secret": SecretStr(secret)}
        # a role is assumed over HTTPS (the credentials library's rule)
        return AlibabaCloudCredentials(
            **{**values, **fields, "endpoint": url, "endpoints": {"sts": https_url}}
        )

    block("app", role_arn=f"acs:ram::{UIDS['registry']}:role/deployer").save(
        "registry-via-role", overwrite=True
    )
    block("registry", role_arn=f"acs:ram::{UIDS['app']}:role/operator").save(
        "app-via-role", overwrite=True
    )
    block("app", access_key_secret=SecretStr(BAD_SECRET)).save("app-bad-secret", overwrite=True)
    block("app", access_key_id="LTAInobody", access_key_secret=SecretStr(UNKNOWN_KEY_SECRET)).save(
        "app-unknown-key", overwrite=True
    )


def _flow(scenario: Scenario, spec: Any, *, dry_run: bool = False) -> Any:
    """Run the deploy flow; keep its id, its result's repr, and any exception's full text."""
    run = deploy(spec, dry_run=dry_run)
    scenario.flow_run_ids.append(run.flow_run_id)
    value = run.state.result(raise_on_failure=False)
    scenario.texts += [repr(value), str(value), repr(run.state), str(run.state.message)]
    if isinstance(value, BaseException):
        scenario.texts.append("".join(traceback.format_exception(value)))
    return value


def _since(scenario: Scenario, started: datetime) -> None:
    scenario.flow_run_ids += [r for r in flow_runs_since(started) if r not in scenario.flow_run_ids]


@pytest.fixture(scope="module")
def journey(
    prefect_harness: None,
    fast_sandbox_process: SandboxProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Journey]:
    url = fast_sandbox_process.url
    admin = SandboxAdmin(url)
    admin.reset()
    forget_ledgers()
    sdk = SdkFactory(fast_sandbox_process.endpoint)
    _roles(sdk)
    _blocks(url, fast_sandbox_process.https_url)
    directory = tmp_path_factory.mktemp("secrets")
    started = datetime.now(UTC)
    out = {name: Scenario() for name in SCENARIOS}

    sts = out["sts"]
    spec = write_spec(
        directory / "sts.yaml",
        {**DEMO_SPEC, "accounts": {"app": "app-via-role", "registry": "registry-via-role"}},
    )
    t0 = datetime.now(UTC)
    codes = []
    for command in ("plan", "deploy", "teardown"):
        code, output = _cli(command, str(spec))
        codes.append(code)
        sts.texts.append(output)
    assert codes == [0, 0, 0], sts.texts
    _since(sts, t0)
    sts.outcome = "plan, deploy, teardown exit 0"

    secret = out["secret"]
    result = _flow(secret, make_spec(access=secret_access()))
    assert result.outcome == "deployed", result
    secret.outcome = "deployed"

    failed = out["failed"]
    unwhitelist_eip(sdk)
    bad = dict(DEMO_SPEC)
    bad.update(
        access=secret_access(),
        image={"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"},
        network={"whitelist": "none"},
    )
    t0 = datetime.now(UTC)
    code, output = _cli("deploy", str(write_spec(directory / "failed.yaml", bad)))
    failed.texts.append(output)
    _since(failed, t0)
    assert code == 1 and "Root cause (re-checked now)" in output, output
    failed.outcome = "exit 1; diagnosed; rollback attempted"

    blocked = out["blocked"]
    error = _flow(blocked, make_spec(app={"namespace": "cn-hangzhou:isolated"}), dry_run=True)
    assert "The plan is blocked" in str(error)
    blocked.outcome = "Failed: the plan is blocked"

    for name, block in (("bad-secret", "app-bad-secret"), ("unknown-key", "app-unknown-key")):
        error = _flow(out[name], make_spec(accounts={"app": block, "registry": "sandbox-registry"}))
        assert str(error).startswith("accounts.app:"), str(error)
        out[name].outcome = f"Failed: {str(error)[:120]}"

    held = httpx.get(f"{url}/_sandbox/secrets", trust_env=False).json()
    secrets = sorted({*held, *SECRETS, BAD_SECRET, UNKNOWN_KEY_SECRET})
    yield Journey(out, secrets, started)
    admin.reset()
    admin.close()


def encodings(secret: str) -> set[str]:
    """The value, and the forms a careless log line or a docker config would carry it in."""
    forms = {secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe="")}
    forms.add(json.dumps(secret)[1:-1])
    for user, password in (EE_LOGIN, PERSONAL_LOGIN):
        if secret == password:
            forms.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    return forms


def prefect_records(flow_run_ids: list[UUID]) -> list[str]:
    """Everything Prefect's API keeps about these flow runs, as text."""
    texts: list[str] = []
    texts += [f"{a.key} {a.data} {a.description}" for a in artifacts_of(flow_run_ids)]
    texts += [log.message for log in logs_of(flow_run_ids)]
    EventsWorker.drain_all()
    related = [f"prefect.flow-run.{i}" for i in flow_run_ids]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
        )
        texts += [run.model_dump_json() for run in runs]
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
        )
        texts += [task.model_dump_json() for task in tasks]
        for run_id in flow_run_ids:
            texts += [s.model_dump_json() for s in client.read_flow_run_states(run_id)]
        page = client.read_events(EventFilter(related=EventRelatedFilter(id=related)), limit=50)
        events = list(page.events)
        while page.next_page is not None:
            page = client.read_events_page(str(page.next_page))
            events += page.events
        texts += [event.model_dump_json() for event in events]
    texts.append(json.dumps(ledgers()))
    return texts


def persisted(since: datetime) -> list[str]:
    """Files Prefect wrote under its local result storage during the journey."""
    root = Path(PREFECT_LOCAL_STORAGE_PATH.value())
    if not root.exists():
        return []
    cutoff = since.timestamp() - 1
    return [
        p.read_bytes().decode("utf-8", "replace")
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_mtime >= cutoff
    ]


@pytest.mark.reliability("secrets", "no secret in any text a run leaves")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_secret_anywhere(journey: Journey, name: str, record_property: Record) -> None:
    scenario = journey.scenarios[name]
    assert scenario.flow_run_ids
    texts = [*scenario.texts, *prefect_records(scenario.flow_run_ids)]
    if name == "sts":
        texts += persisted(journey.started)
    joined = "\n".join(texts)
    leaks = [s for s in journey.secrets for form in encodings(s) if form in joined]
    assert leaks == []
    tokens = len([s for s in journey.secrets if len(s) > 100])
    record_property(
        "outcome",
        f"{scenario.outcome}; {len(scenario.flow_run_ids)} flow runs, {len(texts)} texts scanned "
        f"for {len(journey.secrets)} secret values ({tokens} STS tokens) and their encodings: "
        "0 hits",
    )


@pytest.mark.reliability("secrets", "the scan finds a secret when one is there")
def test_the_scan_would_see_a_leak(journey: Journey, record_property: Record) -> None:
    """The same scan, over the same texts plus one planted secret, reports exactly that one."""
    planted = journey.secrets[0]
    scenario = journey.scenarios["sts"]
    joined = "\n".join([*scenario.texts, f"oops {base64.b64encode(planted.encode()).decode()}"])
    leaks = [s for s in journey.secrets for form in encodings(s) if form in joined]
    assert leaks == [planted]
    record_property("outcome", "a planted base64 secret is reported")
