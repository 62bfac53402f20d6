"""The fleet deploy (flows/fleet_deploy.py): one image to apps in several namespaces and regions,
shared account-B setup, per-app outcomes, zero-write re-runs, the SAE quota as a Prefect rate
limit, the fleet spec's field paths, and `crossdeploy deploy a.yaml b.yaml`.

A world of its own (the demo world plus a second egress namespace in cn-hangzhou and a namespace
in cn-shanghai), with fast change orders (0.3 s), under the session's Prefect test server.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.runtime import flow_run
from typer.testing import CliRunner

from cli.main import app as cli
from crossdeploy.app_lock import app_lock, lock_name
from crossdeploy.fleet_spec import FleetSpec, fleet_from_files, parse_fleet
from crossdeploy.quota import Quota, limit_name
from crossdeploy.spec import DeploySpec, SpecError
from flows.fleet_deploy import FleetError, FleetResult, fleet_deploy
from flows.results import RunError
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, SdkFactory
from tests.support.deploy_support import (
    as_read_back,
    forget_ledgers,
    ledgers,
    logs_of,
    sae_quota,
    save_blocks,
    tear_down,
    write_spec,
)
from tests.support.specs import DEMO_SPEC
from tests.support.worlds import FAST_TIMING, demo_world_data, write_world

ACCOUNTS = {"app": "fleet-app", "registry": "fleet-registry"}
IMAGE = {"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1", "instance_id": "cri-demo"}
EGRESS = {"cn-hangzhou:demo": "47.96.10.20", "cn-hangzhou:batch": "47.96.10.21"}
SHANGHAI_EGRESS = "106.14.20.30"
ROLE = "sae-pull-fleet-shop"


def fleet_world() -> dict[str, Any]:
    """The demo world, plus namespace cn-hangzhou:batch (its own EIP) and cn-shanghai:web."""
    data = demo_world_data(**{**FAST_TIMING, "change_order_seconds": 0.3})
    hangzhou = data["regions"]["cn-hangzhou"]
    vpc = hangzhou["vpcs"][0]
    vpc["vswitches"].append({"id": "vsw-app-k", "cidr": "172.16.3.0/24", "zone": "cn-hangzhou-k"})
    nat = vpc["nat_gateways"][0]
    nat["eips"].append({"id": "eip-app-2", "ip": EGRESS["cn-hangzhou:batch"]})
    nat["snat"].append({"source_vswitch": "vsw-app-k", "ip": EGRESS["cn-hangzhou:batch"]})
    hangzhou["sae_namespaces"].append(
        {"id": "cn-hangzhou:batch", "name": "batch", "account": "app", "vpc": "vpc-app"}
        | {"vswitch": "vsw-app-k", "security_group": "sg-app"}
    )
    data["regions"]["cn-shanghai"] = {
        "vpcs": [
            {
                "id": "vpc-app-sh",
                "account": "app",
                "cidr": "10.0.0.0/8",
                "vswitches": [{"id": "vsw-app-sh", "cidr": "10.1.0.0/24", "zone": "cn-shanghai-b"}],
                "security_groups": ["sg-app-sh"],
                "nat_gateways": [
                    {
                        "id": "ngw-app-sh",
                        "eips": [{"id": "eip-app-sh", "ip": SHANGHAI_EGRESS}],
                        "snat": [{"source_vswitch": "vsw-app-sh", "ip": SHANGHAI_EGRESS}],
                    }
                ],
            }
        ],
        "sae_namespaces": [
            {"id": "cn-shanghai:web", "name": "web", "account": "app", "vpc": "vpc-app-sh"}
            | {"vswitch": "vsw-app-sh", "security_group": "sg-app-sh"}
        ],
    }
    return data


@pytest.fixture(scope="module")
def fleet_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    path = write_world(fleet_world(), tmp_path_factory.mktemp("fleet-world"))
    with SandboxProcess(world=path) as process:
        yield process


@pytest.fixture(scope="module")
def fleet_blocks(prefect_harness: None, fleet_process: SandboxProcess) -> None:
    save_blocks(fleet_process.url, app=ACCOUNTS["app"], registry=ACCOUNTS["registry"])


@pytest.fixture
def world(fleet_blocks: None, fleet_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    forget_ledgers()
    admin = SandboxAdmin(fleet_process.url)
    admin.reset()
    yield admin
    admin.close()


@pytest.fixture
def sdk(world: SandboxAdmin, fleet_process: SandboxProcess) -> SdkFactory:
    return SdkFactory(fleet_process.endpoint)


def fleet_data(*apps: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {
        "name": "shop",
        "accounts": ACCOUNTS,
        "image": IMAGE,
        "defaults": {"region": "cn-hangzhou", "cpu": 500, "memory": 1024},
        "apps": list(apps),
        **sections,
    }


def run(fleet: dict[str, Any], **options: Any) -> tuple[FleetResult | None, FleetError | None]:
    state = fleet_deploy(fleet=parse_fleet(fleet), return_state=True, **options)
    if state.is_completed():
        result = state.result()
        assert isinstance(result, FleetResult)
        return result, None
    error = state.result(raise_on_failure=False)
    assert isinstance(error, FleetError), repr(error)
    return error.result, error


# -- reading account A and B through the SDK ------------------------------------------------------


def roles(sdk: SdkFactory) -> list[str]:
    listed = sdk.ram().list_roles(ram_models.ListRolesRequest()).body.roles.role
    return sorted(str(r.role_name) for r in listed)


def custom_policies(admin: SandboxAdmin) -> list[str]:
    return sorted(admin.state()["registry"].get("global", {}).get("ram_policy", {}))


def acl(sdk: SdkFactory) -> dict[str, str]:
    request = cr_models.GetInstanceEndpointRequest(
        instance_id="cri-demo", endpoint_type="internet", module_name="Registry"
    )
    entries = sdk.cr().get_instance_endpoint(request).body.acl_entries
    return {str(e.entry): str(e.comment) for e in entries}


def apps(sdk: SdkFactory) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the app's config (DescribeApplicationConfig) and status, in both
    regions of the fleet world (SAE lists one region per endpoint)."""
    out = {}
    for region in ("cn-hangzhou", "cn-shanghai"):
        out.update(_apps_in(sdk.sae(region=region)))
    return out


def _apps_in(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    listed = client.list_applications(sae_models.ListApplicationsRequest(page_size=100))
    out = {}
    for item in listed.body.data.applications:
        config = client.describe_application_config(
            sae_models.DescribeApplicationConfigRequest(app_id=item.app_id)
        ).body.data
        status = client.describe_application_status(
            sae_models.DescribeApplicationStatusRequest(app_id=item.app_id)
        ).body.data
        out[(str(item.namespace_id), str(item.app_name))] = {
            "role": config.acr_assume_role_arn,
            "secrets": config.image_pull_secrets,
            "image": config.image_url,
            "status": status.current_status,
            "running": status.running_instances,
        }
    return out


# -- the fleet ------------------------------------------------------------------------------------

FLEET: list[dict[str, Any]] = [
    {"name": "shop-web", "namespace": "cn-hangzhou:demo", "replicas": 2},
    {"name": "shop-api", "namespace": "cn-hangzhou:demo", "envs": {"MODE": "api"}},
    {"name": "shop-batch", "namespace": "cn-hangzhou:batch"},
    {"name": "shop-cron", "region": "cn-shanghai", "namespace": "cn-shanghai:web"},
]
LOST: dict[str, Any] = {"name": "shop-lost", "namespace": "cn-hangzhou:isolated"}


THROTTLE_CALLS = 40
THROTTLE = {"product": "sae", "throttle_per_minute": THROTTLE_CALLS, "window_seconds": 2}
"""SAE throttles at 40 calls in any 2 s per account (a scaled-down 60 per minute); the flow's
rate limits are per account and region, so each of the fleet's two regions gets half of it."""
QUOTA = Quota(20, 2)


def test_fleet_shares_the_setup_reports_the_blocked_app_and_reruns_with_no_write(
    world: SandboxAdmin, sdk: SdkFactory
) -> None:
    """Four apps in three namespaces and two regions land with one role, one policy and one
    whitelist entry per egress; an app in a namespace without egress is reported, by name and
    cause, while the others deploy. Re-running the fleet writes nothing; each app's ledger
    still tears down that app alone. Both runs are paced by the quota: more SAE calls than the
    throttle allows in a window, not one Throttling.User."""
    world.set_faults(THROTTLE)
    paced = {"quota_calls": QUOTA.calls, "quota_window_seconds": QUOTA.window_seconds}
    with sae_quota(QUOTA, "cn-hangzhou", "cn-shanghai"):  # the operator's limits for the fleet
        result, error = run(fleet_data(*FLEET, LOST), **paced)
        written = len(world.writes())
        again, again_error = run(fleet_data(*FLEET), **paced)
        limits = _limits(("cn-hangzhou", "cn-shanghai"))

    assert error is not None and result is not None
    assert "1 of 5 app(s) of fleet shop did not land" in error.message
    assert "shop-lost (cn-hangzhou:isolated): blocked: network: vsw-app-b" in error.message
    outcomes = {(a.namespace_id, a.name): a.outcome for a in result.apps}
    assert outcomes == {
        **{(a.get("namespace", ""), a["name"]): "deployed" for a in FLEET},
        ("cn-hangzhou:isolated", "shop-lost"): "blocked",
    }

    role_arn = f"acs:ram::{UIDS['registry']}:role/{ROLE}"
    assert roles(sdk) == [ROLE]
    assert custom_policies(world) == [ROLE]
    ours = {e for e, comment in acl(sdk).items() if comment == "sae-crossdeploy:fleet-shop"}
    assert ours == {f"{ip}/32" for ip in [*EGRESS.values(), SHANGHAI_EGRESS]}
    deployed = apps(sdk)
    assert set(deployed) == set(outcomes) - {("cn-hangzhou:isolated", "shop-lost")}
    for key, found in deployed.items():
        assert found["role"] == role_arn, key
        assert found["image"] == IMAGE["url"], key
        assert (found["status"], found["running"]) == (
            "RUNNING",
            2 if key == ("cn-hangzhou:demo", "shop-web") else 1,
        ), key

    assert again_error is None and again is not None
    assert {a.outcome for a in again.apps} == {"unchanged"}
    assert again.writes == 0
    assert world.writes()[written:] == []

    sae_calls = [r for r in world.requests() if r["product"] == "sae"]
    assert len(sae_calls) > THROTTLE_CALLS
    assert [r for r in world.requests() if r["code"] == "Throttling.User"] == []
    for limit in limits:  # as the operator set them: the runs left them alone
        assert limit.limit == QUOTA.burst == 2
        assert limit.slot_decay_per_second == pytest.approx(QUOTA.decay_per_second) == 6.0
    assert (QUOTA.batch, QUOTA.apps_in_flight) == (2, 4)

    recorded = ledgers()
    shared = recorded[f"{UIDS['app']}:cn-hangzhou:demo:fleet-shop"]
    assert {(c["resource_type"], c["action"]) for c in shared} >= {
        ("ram.role", "created"),
        ("ram.policy", "created"),
        ("cr.acl-entry", "added"),
    }
    assert [c["resource_type"] for c in recorded[f"{UIDS['app']}:cn-shanghai:web:shop-cron"]] == [
        "sae.application"
    ]
    cron = parse_fleet(fleet_data(*FLEET)).deploy_specs()[3]
    removed = tear_down(cron).result.removed
    assert [(c.resource_type, c.action) for c in removed] == [("sae.application", "deleted")]
    assert ("cn-shanghai:web", "shop-cron") not in apps(sdk)
    assert roles(sdk) == [ROLE]


def _limits(regions: tuple[str, ...]) -> list[GlobalConcurrencyLimitResponse]:
    with get_client(sync_client=True) as client:
        return [
            client.read_global_concurrency_limit_by_name(limit_name(UIDS["app"], region))
            for region in regions
        ]


def test_an_invalid_fleet_is_refused_with_field_paths_before_any_call(world: SandboxAdmin) -> None:
    bad = fleet_data(
        {"name": "shop-web", "namespace": "cn-hangzhou:demo"},
        {"name": "Shop_Api"},
        {"name": "shop-web", "namespace": "cn-hangzhou:demo"},
        {"name": "shop-big", "cpu": 500, "memory": 8192},
        {"name": "shop-sh", "region": "cn-shanghai", "namespace": "cn-hangzhou:demo"},
        defaults={"region": "cn-hangzhou", "replicas": 0},
    )
    with pytest.raises(SpecError) as caught:
        parse_fleet(bad, "fleet.yaml")
    problems = caught.value.problems
    assert "defaults.replicas: 0 is not between 1 and 50" in problems
    assert any(p.startswith("apps[1].name: 'Shop_Api' must be") for p in problems)
    assert (
        "apps[3].memory: 8192 MiB is not offered with app.cpu 500; with 500 millicores choose "
        "1024 or 2048" in problems
    )
    assert any(p.startswith("apps[4].namespace: 'cn-hangzhou:demo' is not in") for p in problems)
    ok = {**bad, "defaults": {"region": "cn-hangzhou"}}
    with pytest.raises(SpecError) as caught:
        parse_fleet(ok)
    assert caught.value.problems == [
        "apps[1].name: 'Shop_Api' must be 1-36 lowercase letters, digits or hyphens, starting "
        "with a letter and not ending with a hyphen",
        "apps[2].name: 'shop-web' is already apps[0] in namespace cn-hangzhou:demo; app names "
        "are unique per namespace",
        "apps[3].memory: 8192 MiB is not offered with app.cpu 500; with 500 millicores choose "
        "1024 or 2048",
        "apps[4].namespace: 'cn-hangzhou:demo' is not in app.region cn-shanghai",
    ]

    # The flow refuses it too, before its first API call (the parameter's shape is valid).
    state = fleet_deploy(fleet=FleetSpec.model_validate(ok), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, SpecError) and "apps[2].name" in str(error)
    assert world.requests() == []
    assert state.state_details.flow_run_id is not None
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name == "fleet-shop"
    read_back = as_read_back(state.state_details.flow_run_id)[1]  # as another client reads it
    assert isinstance(read_back, RunError) and "SpecError" in str(read_back)
    assert "apps[2].name" in str(read_back)


def test_an_app_deployment_not_on_the_server_stops_the_fleet_before_any_write(
    world: SandboxAdmin,
) -> None:
    """`app_deployment` names a deployment the server must have: checked before the plan."""
    result, error = run(fleet_data(*FLEET[:1]), app_deployment="fleet-app/no-such-deployment")
    assert result is None and error is not None
    assert "no deployment 'fleet-app/no-such-deployment'" in error.message
    assert "prefect --no-prompt deploy --all" in error.message
    assert not [e for e in world.requests() if e["write"]]


def test_spec_files_of_a_fleet_must_share_accounts_and_image(tmp_path: Path) -> None:
    one = write_spec(tmp_path / "one.yaml", {**copy.deepcopy(DEMO_SPEC), "accounts": ACCOUNTS})
    other = copy.deepcopy(DEMO_SPEC)
    other["app"]["name"] = "shop-api"
    other["image"]["url"] = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"
    two = write_spec(tmp_path / "two.yaml", other)
    with pytest.raises(SpecError) as caught:
        fleet_from_files([one, two])
    assert caught.value.problems == [
        f"{two}: accounts differs from {one}'s; the apps of a fleet share it",
        f"{two}: image differs from {one}'s; the apps of a fleet share it",
    ]


def test_cli_deploys_several_spec_files_as_one_fleet(
    world: SandboxAdmin, sdk: SdkFactory, tmp_path: Path
) -> None:
    """`crossdeploy plan/deploy a.yaml b.yaml --fleet duo` with the secret access method: the
    plan writes nothing; the deploy creates one registry secret per namespace."""
    paths = []
    for name, namespace in [("shop-web", "cn-hangzhou:demo"), ("shop-batch", "cn-hangzhou:batch")]:
        data = copy.deepcopy(DEMO_SPEC)
        data["accounts"] = ACCOUNTS
        data["app"].update(name=name, namespace=namespace, replicas=1)
        data["access"] = {"method": "secret", "registry_login": "acr-login"}
        paths.append(str(write_spec(tmp_path / f"{name}.yaml", data)))
    runner = CliRunner()

    fleet = ["--fleet", "duo", "--calls-per-minute", "600"]
    planned = runner.invoke(cli, ["plan", *paths, *fleet], env={"COLUMNS": "200"})
    assert planned.exit_code == 0, planned.output
    assert "Fleet duo: 2 app(s): 2 planned." in planned.output
    assert world.writes() == []

    done = runner.invoke(cli, ["deploy", *paths, *fleet], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "Fleet duo: 2 app(s): 2 deployed." in done.output
    state = world.state()["app"]
    secrets = [
        (s["NamespaceId"], s["SecretName"])
        for region in state.values()
        for s in region.get("sae_secret", {}).values()
    ]
    assert sorted(secrets) == [
        ("cn-hangzhou:batch", "acr_pull_fleet_duo"),
        ("cn-hangzhou:demo", "acr_pull_fleet_duo"),
    ]
    assert {key[1]: found["secrets"] for key, found in apps(sdk).items()}.keys() == {
        "shop-web",
        "shop-batch",
    }


@flow(name="hold-app-lock")
def _hold_app_lock(spec: DeploySpec, sandbox_url: str) -> None:
    """Hold the app's lock until 4 s after the fleet began inspecting its app."""
    run_id = flow_run.get_id()
    uid = UIDS["app"]
    with app_lock(spec, uid, flow_run_id=UUID(run_id) if run_id else None, wait_seconds=30):
        admin = SandboxAdmin(sandbox_url)
        deadline = time.monotonic() + 60
        while not any(e["action"] == "ListApplications" for e in admin.requests()):
            assert time.monotonic() < deadline, "the fleet never inspected its app"
            time.sleep(0.1)
        admin.close()
        time.sleep(4)


def test_a_fleet_app_waits_for_the_run_holding_its_lock(
    world: SandboxAdmin, fleet_process: SandboxProcess
) -> None:
    """Another run holds the app's lock: the fleet's app waits for it (then re-inspects) and
    lands."""
    data = fleet_data(FLEET[0])
    (spec,) = parse_fleet(data).deploy_specs()
    holder = threading.Thread(target=_hold_app_lock, args=(spec, fleet_process.url))
    holder.start()
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 30
        while client.read_variable_by_name(lock_name(spec, UIDS["app"])) is None:
            assert time.monotonic() < deadline, "the holder never took the app's lock"
            time.sleep(0.05)
    state = fleet_deploy(fleet=parse_fleet(data), return_state=True)
    holder.join(30)
    assert state.is_completed(), state
    result = state.result()
    assert isinstance(result, FleetResult) and result.apps[0].outcome == "deployed"
    assert state.state_details.flow_run_id is not None
    lines = [log.message for log in logs_of([state.state_details.flow_run_id])]
    assert any("waiting for another run of this app" in line for line in lines), lines
    assert any("after waiting" in line for line in lines), lines
