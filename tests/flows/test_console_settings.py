"""Every setting of the SAE console's create page: the spec, the sandbox, batch release, drift.

Spec checks need no cloud. The sandbox tests drive the official SDK against the fast sandbox;
one module-scoped flow scenario (create, identical re-run, a changed health check released in
two batches) runs under the session's Prefect test server and is checked by several tests.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException
from prefect.blocks.system import Secret
from pydantic import SecretStr

from crossdeploy import sae_params
from crossdeploy.cloud import CloudError
from crossdeploy.plan import OK
from crossdeploy.sae_facts import NOT_IN_API_CONTRACT
from crossdeploy.spec import SpecError, parse_spec
from sandbox.services.sae import rules as sandbox_apps
from sandbox.testing import SandboxAdmin, SandboxProcess
from tasks.change_order import Progress, follow_change_order
from tests.support.clients import SdkFactory
from tests.support.deploy_support import (
    Run,
    artifacts_of,
    deploy,
    forget_ledgers,
    leaked,
    logs_of,
    save_blocks,
)
from tests.support.sae_setup import IMAGE, create_app, ready_cross_account, wait_for
from tests.support.specs import DEMO_SPEC
from tests.support.worlds import FAST_POLL

README = Path(__file__).resolve().parents[2] / "README.md"
OSS_SECRET = "oss-secret-value-42"
LIVENESS = {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 5}


def spec_data(**app: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEMO_SPEC)
    data["app"].update(app)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.problems


# -- the spec --------------------------------------------------------------------------------------


def test_sdk_parameters_the_api_contract_lacks_are_refused_in_the_spec() -> None:
    """Labels is in the SDK's models but not in the API metadata: the gateway would ignore it,
    so the spec refuses it rather than drift on every run."""
    found = problems(spec_data(advanced={"Labels": {"team": "shop"}}))
    assert any(p.startswith("app.advanced.Labels: not a CreateApplication") for p in found)


def test_advanced_names_and_kinds_come_from_the_sdk_request_models() -> None:
    sdk_names = set(sae_params.wire_names(sae_params.CREATE)) | set(
        sae_params.wire_names(sae_params.DEPLOY)
    )
    assert set(sae_params.ALL_PARAMS) == sdk_names - NOT_IN_API_CONTRACT
    assert sae_params.ALL_PARAMS["SidecarContainersConfig"].nested is not None
    assert sae_params.ALL_PARAMS["EnableCpuBurst"].kind == "bool"
    assert sae_params.ALL_PARAMS["MinReadyInstances"].kind == "int"
    assert {"NamespaceId", "VpcId", "SaeVersion"} <= sae_params.CREATE_ONLY
    assert {"UpdateStrategy", "MinReadyInstances"} <= sae_params.DEPLOY_ONLY
    # the sandbox's documented lists say the same as the SDK
    assert set(sae_params.CREATE_PARAMS) == sandbox_apps.CREATE_PARAMS
    assert set(sae_params.DEPLOY_PARAMS) == sandbox_apps.DEPLOY_PARAMS


def test_unknown_names_bad_json_and_owned_parameters_are_named() -> None:
    found = problems(
        spec_data(
            advanced={
                "Livenes": LIVENESS,
                "Readiness": '{"tcpSocket": {"port": 80}',
                "Cpu": 2000,
                "SidecarContainersConfig": [{"Name": "envoy", "Image": "x"}],
                "MinReadyInstances": "one",
                "OssAkSecret": "plain-text",
            },
            edition="ultimate",
        )
    )
    joined = "\n".join(found)
    assert "app.edition: Input should be 'lite', 'std' or 'pro'" in joined
    assert (
        "app.advanced.Livenes: not a CreateApplication or DeployApplication parameter "
        "(did you mean Liveness?)" in found
    )
    assert any(p.startswith("app.advanced.Readiness: not valid JSON") for p in found)
    assert "app.advanced.Cpu: set by app.cpu, not app.advanced" in found
    assert any(
        p.startswith("app.advanced.SidecarContainersConfig[0].Image: not a field of") for p in found
    )
    assert "app.advanced.MinReadyInstances: expected an integer, got 'one'" in found
    assert any(p.startswith("app.advanced.OssAkSecret: a secret is not written") for p in found)
    assert "plain-text" not in joined


def test_rollout_batches_are_checked_and_become_an_update_strategy() -> None:
    data = spec_data()
    data["rollout"] = {"batches": 3}
    assert problems(data) == [
        "rollout.batches: 3 batches for 2 replica(s); at most one batch per replica"
    ]
    data["rollout"] = {"confirm": "manual"}
    assert problems(data) == [
        "rollout.batches: required with batch_wait_minutes or confirm: manual"
    ]
    data["rollout"] = {"batches": 2, "confirm": "manual", "batch_wait_minutes": 2}
    assert problems(data) == ["rollout.batch_wait_minutes: only used with confirm: auto"]
    data = spec_data(advanced={"UpdateStrategy": {"type": "BatchUpdate"}})
    data["rollout"] = {"batches": 2}
    assert problems(data)[0].startswith("app.advanced.UpdateStrategy: rollout.batches sets")
    data = spec_data()
    data["rollout"] = {"batches": 2, "batch_wait_minutes": 1}
    strategy = json.loads(str(parse_spec(data).rollout.update_strategy()))
    assert strategy == {
        "type": "BatchUpdate",
        "batchUpdate": {"batch": 2, "releaseType": "auto", "batchWaitTime": 1},
    }


def _readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Every console setting", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)


def test_every_readme_console_example_is_a_valid_spec() -> None:
    examples = _readme_examples()
    assert len(examples) >= 14
    for example in examples:
        data = yaml.safe_load(example)
        spec = {**copy.deepcopy(DEMO_SPEC), **{k: v for k, v in data.items() if k != "app"}}
        spec["app"] = {**DEMO_SPEC["app"], **data.get("app", {})}
        parse_spec(spec, f"README example {example[:40]!r}")


# -- the sandbox -----------------------------------------------------------------------------------


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientException) as caught:
        call()
    return str(caught.value.code), str(caught.value.message)


def test_sandbox_default_namespace_advanced_settings_and_their_checks(fast_sdk: SdkFactory) -> None:
    sae = fast_sdk.sae()

    def create(**extra: Any) -> Any:
        request = sae_models.CreateApplicationRequest().from_map(
            {
                "AppName": "console-app",
                "NamespaceId": "cn-hangzhou",
                "PackageType": "Image",
                "ImageUrl": IMAGE,
                "Cpu": 1000,
                "Memory": 2048,
                "Replicas": 1,
                "Deploy": False,
                **extra,
            }
        )
        return sae.create_application(request)

    net = {"VpcId": "vpc-app", "VSwitchId": "vsw-app-b"}
    code, message = _error(lambda: create())
    assert code == "InvalidParameter.NotEmpty" and "parameter VpcId" in message
    code, message = _error(lambda: create(**net, NewSaeVersion="ultra"))
    assert (code, "NewSaeVersion" in message) == ("InvalidParameter.WithMessage", True)
    code, message = _error(lambda: create(**net, Liveness='{"periodSeconds": 5}'))
    assert "exactly one of exec, httpGet or tcpSocket" in message
    mount = '[{"bucketName": "b", "bucketPath": "/", "mountPath": "/data", "readOnly": true}]'
    assert _error(lambda: create(**net, OssMountDescs=mount))[0] == "InvalidParameter.NotEmpty"
    assert "Timezone" in _error(lambda: create(**net, Timezone="not a zone!"))[1]
    listed = sae.describe_namespace_list(sae_models.DescribeNamespaceListRequest()).body.data
    assert "cn-hangzhou" not in {n.namespace_id for n in listed}  # nothing bound it yet

    app_id = create(
        **net,
        NewSaeVersion="pro",
        SaeVersion="v2",
        Liveness=json.dumps(LIVENESS),
        OssMountDescs=mount,
        OssAkId="oss-id",
        OssAkSecret=OSS_SECRET,
        EnableCpuBurst=True,
        Timezone="Europe/Berlin",
        SidecarContainersConfig=[{"Name": "envoy", "ImageUrl": IMAGE, "Cpu": 500}],
    ).body.data.app_id
    listed = sae.describe_namespace_list(sae_models.DescribeNamespaceListRequest()).body.data
    default = next(n for n in listed if n.namespace_id == "cn-hangzhou")
    assert (default.vpc_id, default.v_switch_id, default.security_group_id, default.custom) == (
        "vpc-app",
        "vsw-app-b",
        "sg-app",
        False,
    )
    config = sae.describe_application_config(
        sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    ).body.data
    assert (config.namespace_id, config.new_sae_version, config.timezone) == (
        "cn-hangzhou",
        "pro",
        "Europe/Berlin",
    )
    assert json.loads(config.liveness) == LIVENESS
    assert config.oss_mount_descs[0].bucket_name == "b" and config.oss_ak_id == "oss-id"
    assert config.oss_ak_secret is None  # write-only
    assert config.sidecar_containers_config[0].name == "envoy"
    assert str(config.enable_cpu_burst).lower() == "true"
    # an empty JSON-valued parameter removes the setting
    sae.deploy_application(
        sae_models.DeployApplicationRequest(app_id=app_id, liveness="", deploy="false")
    )
    again = sae.describe_application_config(
        sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    ).body.data
    assert again.liveness is None and again.timezone == "Europe/Berlin"


def test_batches_wait_for_confirmation_and_auto_confirm_advances_them(
    fast_sdk: SdkFactory, fast_creds: dict[str, Any]
) -> None:
    role_arn = ready_cross_account(fast_sdk)
    app_id, created = create_app(fast_sdk, role_arn)
    assert wait_for(fast_sdk, created).status == 2
    sae = fast_sdk.sae()

    def release(kind: str, wait: int = 0) -> str:
        strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": kind}}
        if wait:
            strategy["batchUpdate"]["batchWaitTime"] = wait  # type: ignore[index]
        request = sae_models.DeployApplicationRequest(
            app_id=app_id,
            update_strategy=json.dumps(strategy),
            envs=f'[{{"name":"K","value":"{kind}"}}]',
        )
        return str(sae.deploy_application(request).body.data.change_order_id)

    seen: list[Progress] = []
    manual = release("manual")
    waiting = follow_change_order(
        fast_creds["app"], manual, timeout_seconds=2.5, poll=FAST_POLL, on_progress=seen.append
    )
    assert waiting.timed_out and waiting.status == 8 and not waiting.confirmed_batches
    assert seen[-1].line().startswith("batch 2 of 2 waits to be confirmed")
    assert any(p.batches_done == 1 for p in seen)
    done = follow_change_order(
        fast_creds["app"], manual, timeout_seconds=20, poll=FAST_POLL, confirm="auto"
    )
    assert done.succeeded and done.confirmed_batches == (2,)
    assert "batch 2 confirmed by this run" in done.summary()

    seen.clear()
    timed = release("auto", wait=1)
    outcome = follow_change_order(
        fast_creds["app"], timed, timeout_seconds=20, poll=FAST_POLL, on_progress=seen.append
    )
    assert outcome.succeeded and outcome.batches == 2 and not outcome.confirmed_batches
    assert 9 in {p.status for p in seen}


def test_a_refused_confirmation_of_a_batch_still_waiting_is_an_error(
    fast_sdk: SdkFactory, fast_creds: dict[str, Any], fast_admin: SandboxAdmin
) -> None:
    """A refused ConfirmPipelineBatch means "confirmed meanwhile" only when the order, read again,
    no longer waits on that batch; SAE's generic InvalidParameter.WithMessage is not that."""
    app_id, created = create_app(fast_sdk, ready_cross_account(fast_sdk))
    assert wait_for(fast_sdk, created).status == 2
    strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": "manual"}}
    request = sae_models.DeployApplicationRequest(
        app_id=app_id, update_strategy=json.dumps(strategy), envs='[{"name":"K","value":"v"}]'
    )
    order = str(fast_sdk.sae().deploy_application(request).body.data.change_order_id)
    fast_admin.set_faults(
        {"action": "ConfirmPipelineBatch", "error": "InvalidParameter.WithMessage", "status": 400}
    )
    with pytest.raises(CloudError) as refused:
        follow_change_order(
            fast_creds["app"], order, timeout_seconds=20, poll=FAST_POLL, confirm="auto"
        )
    assert refused.value.code == "InvalidParameter.WithMessage"
    assert wait_for(fast_sdk, order, until={8}).status == 8  # still waiting, nothing confirmed


# -- the flow: create, identical re-run, changed health check in two batches ----------------------


@dataclass(frozen=True)
class Scenario:
    created: Run
    rerun: Run
    rerun_writes: int
    changed: Run
    config: Any
    batches: int


def _console_spec(liveness: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(DEMO_SPEC)
    data["app"].pop("namespace", None)
    data["app"].update(
        vpc_id="vpc-app",
        vswitch_id="vsw-app-h",
        edition="pro",
        advanced={
            "Liveness": liveness,
            "Readiness": {"tcpSocket": {"port": 8080}},
            "SlsConfigs": [{"logDir": "", "logType": "stdout"}],
            "NasConfigs": '[{"mountPath": "/data", "nasId": "nas-1", "mountDomain": "x.nas"}]',
            "OssMountDescs": [{"bucketName": "b", "bucketPath": "/", "mountPath": "/oss"}],
            "OssAkId": "oss-id",
            "OssAkSecret": {"secret_block": "oss-ak-secret"},
            "Timezone": "Europe/Berlin",
            "EnableCpuBurst": True,
        },
    )
    data["rollout"] = {"batches": 2, "confirm": "auto"}
    return data


@pytest.fixture(scope="module")
def scenario(prefect_harness: None, fast_sandbox_process: SandboxProcess) -> Iterator[Scenario]:
    admin = SandboxAdmin(fast_sandbox_process.url)
    admin.reset()
    forget_ledgers()
    save_blocks(fast_sandbox_process.url)
    Secret(value=SecretStr(OSS_SECRET)).save("oss-ak-secret", overwrite=True)
    spec = parse_spec(_console_spec(LIVENESS))
    created = deploy(spec)
    writes = len(admin.writes())
    rerun = deploy(spec)
    rerun_writes = len(admin.writes()) - writes
    changed_liveness = {**LIVENESS, "initialDelaySeconds": 20}
    changed = deploy(parse_spec(_console_spec(changed_liveness)))
    sdk = SdkFactory(fast_sandbox_process.endpoint)
    app_id = created.result.app_id
    config = (
        sdk.sae()
        .describe_application_config(sae_models.DescribeApplicationConfigRequest(app_id=app_id))
        .body.data
    )
    order = (
        sdk.sae()
        .describe_change_order(
            sae_models.DescribeChangeOrderRequest(change_order_id=changed.result.change_order_id)
        )
        .body.data
    )
    yield Scenario(created, rerun, rerun_writes, changed, config, int(order.batch_count))
    admin.close()


def test_the_console_settings_are_created_in_the_default_namespace(scenario: Scenario) -> None:
    assert scenario.created.result.outcome == "deployed"
    config = scenario.config
    assert (config.namespace_id, config.vpc_id, config.v_switch_id) == (
        "cn-hangzhou",
        "vpc-app",
        "vsw-app-h",
    )
    assert (config.new_sae_version, config.timezone, config.oss_ak_id) == (
        "pro",
        "Europe/Berlin",
        "oss-id",
    )
    assert json.loads(config.readiness) == {"tcpSocket": {"port": 8080}}
    assert json.loads(config.nas_configs)[0]["nasId"] == "nas-1"
    plan = scenario.created.result.plan
    network = next(r for r in plan.rows if r.step == "network")
    assert network.action == OK and "vsw-app-h" in network.resource


def test_an_identical_rerun_writes_nothing_and_says_what_it_could_not_compare(
    scenario: Scenario,
) -> None:
    result = scenario.rerun.result
    assert (result.outcome, result.change_order_id, scenario.rerun_writes) == (
        "unchanged",
        None,
        0,
    )
    app = next(r for r in result.plan.rows if r.step == "app")
    assert app.action == OK
    assert "not compared (SaeVersion, OssAkSecret)" in app.reason
    assert "UpdateStrategy: applied with the next deploy" in app.reason


def test_a_changed_health_check_is_named_and_released_in_two_batches(scenario: Scenario) -> None:
    result = scenario.changed.result
    app = next(r for r in result.plan.rows if r.step == "app")
    assert app.action == "deploy (Liveness)"
    assert "Liveness.initialDelaySeconds: 5 → 20" in app.reason
    assert "UpdateStrategy: sent with this deploy" in app.reason
    assert result.outcome == "deployed" and scenario.batches == 2
    assert json.loads(scenario.config.liveness)["initialDelaySeconds"] == 20
    messages = [log.message for log in logs_of([scenario.changed.flow_run_id])]
    assert any(re.search(r"batch 1 of 2 done", m) for m in messages)


def test_the_oss_secret_never_shows(scenario: Scenario) -> None:
    runs: list[UUID] = [s.flow_run_id for s in (scenario.created, scenario.rerun, scenario.changed)]
    texts = [log.message for log in logs_of(runs)]
    texts += [str(a.data) + str(a.description) for a in artifacts_of(runs)]
    texts += [r.plan.to_markdown() for r in (scenario.created.result, scenario.changed.result)]
    assert OSS_SECRET not in "\n".join(texts)
    assert leaked(texts) == []
