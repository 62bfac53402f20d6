"""The cross-account deploy flow end to end: real flow, real SDKs, the sandbox cloud, Prefect's
test server. No mocks.

Long scenarios (deploy, re-run, teardown; a failed deploy) run once per module in a fixture that
records what happened; several tests then check the record, so one run proves several things.
Every other test starts from a freshly reset sandbox and an empty ledger.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from darabonba.exceptions import UnretryableException
from prefect import flow

from cli.runner import RunOutcome, run_deploy
from crossdeploy import ram_policy
from crossdeploy.plan import BLOCKED, OK
from crossdeploy.spec import DeploySpec
from flows.diagnosis import root_cause
from flows.inspection import resolve_accounts
from flows.landing import DeployResult
from flows.steps import STEPS
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.deploy_support import (
    APP_UID,
    EIP,
    PERSONAL_IMAGE,
    REGISTRY_UID,
    Run,
    Teardown,
    actions,
    app_status,
    artifacts_of,
    as_read_back,
    deploy,
    events_of,
    flow_runs_since,
    forget_ledgers,
    leaked,
    ledgers,
    logs_of,
    normalized,
    personal_image,
    save_blocks,
    secret_access,
    state_messages,
    tear_down,
    unwhitelist_eip,
)
from tests.support.pull_worlds import instance_scoped_pull_policy
from tests.support.sae_setup import status, wait_for, whitelist
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data, write_world

T = TypeVar("T")

ROLE = "sae-pull-shop-web"
EE_IMAGE = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"
EE_VPC_HOST = "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
EE_VPC_IMAGE = f"{EE_VPC_HOST}/shop/web:1.1"
RUNNING_2 = ("RUNNING", 2, {"Running": 2})
LEDGER_ID = f"{APP_UID}:cn-hangzhou:demo:shop-web"


def _fresh(process: SandboxProcess) -> SandboxAdmin:
    """A reset sandbox and no ledgers, for the module-scoped scenarios."""
    admin = SandboxAdmin(process.url)
    admin.reset()
    forget_ledgers()
    return admin


def _running(sdk: SdkFactory, app_id: str | None) -> tuple[str, int, dict[str, int]]:
    assert app_id is not None
    current, running, counts, _ = app_status(sdk, app_id)
    return current, running, counts


# -- the whole journey, once per access method -----------------------------------------------------


@dataclass(frozen=True)
class Journey:
    method: str
    spec: DeploySpec
    before: dict[str, Any]
    planned: Run
    planned_writes: int
    deployed: Run
    deploy_calls: list[tuple[str, str]]
    """The deploy's calls, (account, action), in the order the sandbox received them."""
    status: tuple[str, int, dict[str, int], str]
    ledger: Any
    rerun: Run
    rerun_writes: int
    removed: Teardown
    after: dict[str, Any]
    removed_again: Teardown
    again_writes: int
    ledger_after: dict[str, Any]


@pytest.fixture(scope="module", params=["ram-role", "secret"])
def journey(
    request: pytest.FixtureRequest, blocks: None, fast_sandbox_process: SandboxProcess
) -> Iterator[Journey]:
    """Dry run, deploy, re-run, teardown and teardown again of the demo spec, recorded."""
    method = str(request.param)
    admin = _fresh(fast_sandbox_process)
    sdk = SdkFactory(fast_sandbox_process.endpoint)
    spec = make_spec(access=secret_access()) if method == "secret" else make_spec()
    before = normalized(admin.state())
    planned = deploy(spec, dry_run=True)
    planned_writes = len(admin.writes())
    seen = len(admin.requests())
    deployed = deploy(spec)
    deploy_calls = [(r["account"], r["action"]) for r in admin.requests()[seen:]]
    app_id = deployed.result.app_id
    assert app_id is not None
    status = app_status(sdk, app_id)
    recorded = ledgers().get(LEDGER_ID)
    writes = len(admin.writes())
    rerun = deploy(spec)
    rerun_writes = len(admin.writes()) - writes
    removed = tear_down(spec)
    after = normalized(admin.state())
    writes = len(admin.writes())
    removed_again = tear_down(spec)
    again_writes = len(admin.writes()) - writes
    yield Journey(
        method, spec, before, planned, planned_writes, deployed, deploy_calls, status, recorded,
        rerun,
        rerun_writes, removed, after, removed_again, again_writes, ledgers(),
    )  # fmt: skip
    admin.close()


def test_dry_run_plans_every_step_and_writes_nothing(journey: Journey) -> None:
    """`dry_run` returns "planned" with one row per step and makes no write call."""
    result = journey.planned.result
    assert result.outcome == "planned"
    assert journey.planned_writes == 0
    access = (
        {"secret": "create"}
        if journey.method == "secret"
        else {"role": "create", "policy": "create + attach"}
    )
    expected = {"network": OK, "image": OK, "whitelist": f"add {EIP}/32", **access, "app": "create"}
    assert actions(result) == expected
    assert list(actions(result)) == list(expected)
    assert "Dry run: nothing changed." in result.message


def test_deploy_reaches_running_with_all_replicas(journey: Journey) -> None:
    """Both access methods: the app runs the spec's image on 2 of 2 instances."""
    result = journey.deployed.result
    assert result.outcome == "deployed"
    assert journey.status == (*RUNNING_2, journey.spec.image.url)
    assert f"{journey.spec.app.name} is RUNNING: 2 of 2 instances running" in result.message
    made = {(c.resource_type, c.action) for c in result.changes}
    access = (
        {("sae.secret", "created")}
        if journey.method == "secret"
        else {("ram.role", "created"), ("ram.policy", "created"), ("ram.attachment", "attached")}
    )
    assert made == {
        *access,
        ("cr.acl-entry", "added"),
        ("sae.application", "created"),
        ("sae.change-order", "started"),
    }


FOLLOW = {"DescribeChangeOrder", "DescribePipeline"}
"""What following a change order reads again on purpose: its progress."""


def test_a_deploy_reads_each_answer_once(journey: Journey) -> None:
    """What the inspection read is reused by the writes and the verification: apart from
    following the change order, no action is called twice, and a healthy app's instances are
    not listed (DescribeApplicationStatus counts the running ones)."""
    calls = journey.deploy_calls
    repeated = {c for c in calls if c[1] not in FOLLOW and calls.count(c) > 1}
    assert repeated == set(), calls
    actions = {action for _, action in calls}
    assert "DescribeApplicationStatus" in actions
    assert not {"DescribeApplicationGroups", "DescribeApplicationInstances"} & actions


def test_a_rerun_of_the_same_spec_writes_nothing(journey: Journey) -> None:
    """An identical spec: every step ok, no change order, zero write calls, outcome unchanged."""
    result = journey.rerun.result
    assert result.outcome == "unchanged"
    assert journey.rerun_writes == 0
    assert result.change_order_id is None
    assert result.changes == ()
    assert set(actions(result).values()) == {OK}


def test_teardown_leaves_both_accounts_as_they_were(journey: Journey) -> None:
    """After teardown both accounts equal the pre-deploy state; a second teardown removes
    nothing and writes nothing; the ledger is gone."""
    assert journey.after == journey.before
    removed = {(c.resource_type, c.action) for c in journey.removed.result.removed}
    assert ("sae.application", "deleted") in removed
    assert ("cr.acl-entry", "removed") in removed
    assert journey.removed_again.result.removed == ()
    assert journey.again_writes == 0
    assert journey.ledger_after == {}


def test_every_change_is_an_event_and_in_the_ledger(journey: Journey) -> None:
    """One crossdeploy.* event per change (deploy and teardown), naming the resource and the
    app; the ledger holds exactly the changes teardown reverses (not the change order)."""
    changes = journey.deployed.result.changes
    events = events_of(journey.deployed.flow_run_id, at_least=len(changes))
    got = sorted((e.event, e.resource.name or "") for e in events)
    assert got == sorted(
        (f"crossdeploy.{c.resource_type}.{c.action}", c.resource_id) for c in changes
    )
    assert all(any(r.id == "sae.app.cn-hangzhou:demo.shop-web" for r in e.related) for e in events)
    assert journey.ledger == [asdict(c) for c in changes if STEPS.kept(c)]
    assert ("sae.change-order", "started") in {(c.resource_type, c.action) for c in changes}
    removed = journey.removed.result.removed
    gone = events_of(journey.removed.flow_run_id, at_least=len(removed))
    assert sorted(e.event for e in gone) == sorted(
        f"crossdeploy.{c.resource_type}.{c.action}" for c in removed
    )


def test_plan_and_progress_artifacts(journey: Journey) -> None:
    """The plan is a markdown artifact `plan-<app>`; the change order's progress reaches 100."""
    for run in (journey.planned, journey.deployed):
        plan = [a for a in artifacts_of([run.flow_run_id]) if a.key == "plan-shop-web"]
        assert len(plan) == 1 and plan[0].type == "markdown"
        text = str(plan[0].data)
        assert "| step | account | resource | now | wanted | action |" in text
        assert "| whitelist | B | cri-demo internet ACL |" in text
        assert text.endswith(run.result.plan.summary())
    progress = [a for a in artifacts_of([journey.deployed.flow_run_id]) if a.type == "progress"]
    assert len(progress) == 1
    assert progress[0].key == f"change-order-{journey.deployed.result.change_order_id}"
    assert progress[0].data == 100
    assert not [a for a in artifacts_of([journey.planned.flow_run_id]) if a.type == "progress"]


def test_runs_are_named_for_what_they_run_and_their_results_read_back(journey: Journey) -> None:
    """Another client sees `shop-web@1.1` (the app at the tag deployed) and `teardown-shop-web`,
    and reads each run's outcome from the result storage (JSON), as `run_deployment` callers
    do; a dry run says so in its name."""
    runs = {
        "shop-web@1.1 (dry run)": (journey.planned.flow_run_id, journey.planned.result),
        "shop-web@1.1": (journey.deployed.flow_run_id, journey.deployed.result),
        "teardown-shop-web": (journey.removed.flow_run_id, journey.removed.result),
    }
    for name, (flow_run_id, result) in runs.items():
        read_name, read_result, stored = as_read_back(flow_run_id)
        assert read_name == name
        assert read_result == result
        assert json.loads(stored)  # JSON a person (or another language) can read
    deployed = as_read_back(journey.deployed.flow_run_id)[1]
    assert isinstance(deployed, DeployResult) and deployed.outcome == "deployed"
    assert deployed.changes and deployed.app_id == journey.deployed.result.app_id


# -- editions and network paths --------------------------------------------------------------------


def _personal_checks(result: DeployResult, sdk: SdkFactory) -> None:
    """A Personal Edition deploy: no whitelist step to take, nothing written to CR, 2 of 2 up."""
    assert actions(result)["whitelist"] == OK
    assert not [c for c in result.changes if c.resource_type.startswith("cr.")]
    assert _running(sdk, result.app_id) == RUNNING_2


def test_personal_edition_deploys_with_a_secret(world: SandboxAdmin, fast_sdk: SdkFactory) -> None:
    """A Personal Edition image (no instance id, no whitelist) runs with the secret method (the
    ram-role method is deployed by test_rollback_returns_to_the_last_good_version)."""
    spec = make_spec(image=personal_image(), access=secret_access("acr-personal-login"))
    result = deploy(spec).result
    assert actions(result)["secret"] == "create"
    _personal_checks(result, fast_sdk)


def test_personal_edition_over_the_vpc_domain(world: SandboxAdmin, fast_sdk: SdkFactory) -> None:
    """registry-vpc works from a namespace with no internet egress at all (vsw-app-b)."""
    spec = make_spec(
        app={"namespace": "cn-hangzhou:isolated"},
        image=personal_image(PERSONAL_IMAGE.replace("registry.", "registry-vpc.")),
    )
    result = deploy(spec).result
    network = next(r for r in result.plan.rows if r.step == "network")
    assert (network.now, network.action) == ("no internet egress", OK)
    assert _running(fast_sdk, result.app_id) == RUNNING_2


def test_enterprise_vpc_domain_not_linked_is_blocked(world: SandboxAdmin) -> None:
    """In the demo world vpc-app is neither linked nor CEN-connected to cri-demo's VPC endpoint,
    and account B cannot link it: BLOCKED, zero writes."""
    error = deploy(make_spec(image={"url": EE_VPC_IMAGE})).error
    assert error.plan is not None
    [row] = error.plan.blocked
    assert row.step == "whitelist"
    assert row.now == "vpc-app neither linked nor CEN-connected"
    assert "share a vSwitch of vpc-app with account B" in row.reason
    assert "The run does not link VPCs itself." in row.reason
    assert world.writes() == []


VPC_WORLD_APP, VPC_WORLD_REGISTRY = "vpcworld-app", "vpcworld-registry"


@pytest.fixture(scope="module")
def vpc_world(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[SandboxProcess]:
    """The demo world plus CEN between vpc-app and vpc-reg (vpc-app's PrivateZone resolving
    cri-demo's -vpc domain), vpc-nodns CEN-connected without that DNS step (namespace
    cn-hangzhou:nodns), and vpc-sh in cn-shanghai CEN-connected across regions with it (namespace
    cn-shanghai:sh); its own credential blocks (vpcworld-app, vpcworld-registry)."""
    data = demo_world_data(**FAST_TIMING)
    region = data["regions"]["cn-hangzhou"]
    app_vpc = region["vpcs"][0]
    app_vpc["private_zones"] = [EE_VPC_HOST]
    region["vpcs"].append(
        {
            "id": "vpc-nodns",
            "account": "app",
            "cidr": "10.40.0.0/16",
            "vswitches": [{"id": "vsw-nodns-h", "cidr": "10.40.1.0/24", "zone": "cn-hangzhou-h"}],
            "security_groups": ["sg-nodns"],
        }
    )
    region["sae_namespaces"].append(
        {
            "id": "cn-hangzhou:nodns",
            "name": "nodns",
            "account": "app",
            "vpc": "vpc-nodns",
            "vswitch": "vsw-nodns-h",
            "security_group": "sg-nodns",
        }
    )
    region["cen"] = [["vpc-app", "vpc-reg"], ["vpc-nodns", "vpc-reg"]]
    data["regions"]["cn-shanghai"] = {
        "vpcs": [
            {
                "id": "vpc-sh",
                "account": "app",
                "cidr": "172.20.0.0/16",
                "vswitches": [{"id": "vsw-sh-b", "cidr": "172.20.1.0/24", "zone": "cn-shanghai-b"}],
                "security_groups": ["sg-sh"],
                "private_zones": [EE_VPC_HOST],
            }
        ],
        "cen": [["vpc-sh", "vpc-reg"]],
        "sae_namespaces": [
            {
                "id": "cn-shanghai:sh",
                "name": "sh",
                "account": "app",
                "vpc": "vpc-sh",
                "vswitch": "vsw-sh-b",
                "security_group": "sg-sh",
            }
        ],
    }
    path = write_world(data, tmp_path_factory.mktemp("vpc-world"))
    with SandboxProcess(world=path) as process:
        save_blocks(process.url, app=VPC_WORLD_APP, registry=VPC_WORLD_REGISTRY)
        yield process


def _vpc_world_spec(**app: Any) -> DeploySpec:
    return make_spec(
        accounts={"app": VPC_WORLD_APP, "registry": VPC_WORLD_REGISTRY},
        app=app,
        image={"url": EE_VPC_IMAGE},
    )


def test_enterprise_vpc_domain_over_cen(vpc_world: SandboxProcess) -> None:
    """Over CEN to the linked vpc-reg the -vpc domain deploys, from a namespace without internet
    egress, touching no whitelist; the plan names the DNS step it cannot check."""
    forget_ledgers()
    result = deploy(_vpc_world_spec(namespace="cn-hangzhou:isolated")).result
    whitelist = next(r for r in result.plan.rows if r.step == "whitelist")
    assert (whitelist.now, whitelist.action) == ("vpc-app via CEN to vpc-reg", OK)
    assert "in PrivateZone, associate vpc-app with a zone " + EE_VPC_HOST in whitelist.reason
    assert not [c for c in result.changes if c.resource_type.startswith("cr.")]
    assert _running(SdkFactory(vpc_world.endpoint), result.app_id) == RUNNING_2


def test_enterprise_vpc_domain_from_another_region_over_cen(vpc_world: SandboxProcess) -> None:
    """An app in cn-shanghai pulls cri-demo's cn-hangzhou -vpc domain over CEN to vpc-reg."""
    forget_ledgers()
    result = deploy(_vpc_world_spec(region="cn-shanghai", namespace="cn-shanghai:sh")).result
    whitelist = next(r for r in result.plan.rows if r.step == "whitelist")
    assert (whitelist.now, whitelist.action) == ("vpc-sh via CEN to vpc-reg", OK)
    assert _running(SdkFactory(vpc_world.endpoint, "cn-shanghai"), result.app_id) == RUNNING_2


def test_a_missing_dns_step_over_cen_is_the_root_cause(vpc_world: SandboxProcess) -> None:
    """CEN in place but the -vpc name does not resolve in vpc-nodns: the pull fails with `no
    such host`, and the re-check, finding all it can check in place, names the DNS step."""
    forget_ledgers()
    outcome = run_deploy(_vpc_world_spec(namespace="cn-hangzhou:nodns"), dry_run=False)
    assert not outcome.ok
    assert f"dial tcp: lookup {EE_VPC_HOST}: no such host" in outcome.message
    assert (
        "Root cause (re-checked now): every step of the pull path the run can check is in "
        f"place; one it cannot check remains: {EE_VPC_HOST} resolves only in VPCs linked to "
        "cri-demo"
    ) in outcome.message
    assert "in PrivateZone, associate vpc-nodns with a zone" in outcome.message


POOL_APP, POOL_REGISTRY = "poolworld-app", "poolworld-registry"
SECOND_EIP = "47.96.10.21"


@pytest.fixture(scope="module")
def pool_world(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[SandboxProcess]:
    """The demo world where vsw-app-h's SNAT entry leaves from two EIPs (an SNAT address pool),
    with its own credential blocks (poolworld-app, poolworld-registry)."""
    data = demo_world_data(**FAST_TIMING)
    nat = data["regions"]["cn-hangzhou"]["vpcs"][0]["nat_gateways"][0]
    nat["eips"].append({"id": "eip-app-2", "ip": SECOND_EIP})
    nat["snat"] = [{"source_vswitch": "vsw-app-h", "ip": f"{EIP},{SECOND_EIP}"}]
    path = write_world(data, tmp_path_factory.mktemp("pool-world"))
    with SandboxProcess(world=path) as process:
        save_blocks(process.url, app=POOL_APP, registry=POOL_REGISTRY)
        yield process


def test_every_eip_of_an_snat_pool_is_whitelisted_and_diagnosed(
    pool_world: SandboxProcess,
) -> None:
    """SAE's pulls leave from any EIP of the entry: the plan shows them all, the run adds each,
    the app runs; with one taken off the ACL again, the diagnosis names that one."""
    forget_ledgers()
    sdk = SdkFactory(pool_world.endpoint)
    accounts = {"app": POOL_APP, "registry": POOL_REGISTRY}
    result = deploy(make_spec(accounts=accounts)).result
    rows = {row.step: row for row in result.plan.rows}
    assert rows["network"].resource == f"vsw-app-h → ngw-app → {EIP}, {SECOND_EIP}"
    assert rows["whitelist"].action == f"add {EIP}/32 + add {SECOND_EIP}/32"
    assert _running(sdk, result.app_id) == RUNNING_2
    sdk.cr().delete_instance_endpoint_acl_policy(
        cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id="cri-demo", endpoint_type="internet", entry=f"{SECOND_EIP}/32"
        )
    )
    bad = make_spec(
        accounts=accounts,
        image={"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"},
        network={"whitelist": "none"},
    )
    outcome = run_deploy(bad, dry_run=False)
    assert not outcome.ok and "i/o timeout" in outcome.message
    assert (
        f"Root cause (re-checked now): EIP {SECOND_EIP} is not in the internet ACL of cri-demo, "
        f"and the egress of vsw-app-h leaves from any of {EIP}, {SECOND_EIP} (one SNAT entry). "
        f"Fix: set network.whitelist: auto (adds {SECOND_EIP}/32)" in outcome.message
    )


# -- preconditions: fixed by the run, or refused with the reason -----------------------------------


def _create_role(sdk: SdkFactory, trust: dict[str, Any]) -> None:
    sdk.ram().create_role(
        ram_models.CreateRoleRequest(
            role_name=ROLE, assume_role_policy_document=ram_policy.to_text(trust)
        )
    )


def _trust(sdk: SdkFactory) -> dict[str, Any]:
    role = sdk.ram().get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
    return dict(json.loads(role.assume_role_policy_document))


RAM_STATEMENT = {
    "Action": "sts:AssumeRole",
    "Effect": "Allow",
    "Principal": {"RAM": [f"acs:ram::{REGISTRY_UID}:root"]},
}
DENY_SAE = {
    "Action": "sts:AssumeRole",
    "Effect": "Deny",
    "Principal": {"Service": [f"{APP_UID}@sae.aliyuncs.com"]},
}


def _torn_down_to(world: SandboxAdmin, spec: DeploySpec, before: dict[str, Any]) -> None:
    """Teardown brings both accounts back to `before` (the journey also runs a second one)."""
    tear_down(spec)
    assert normalized(world.state()) == before


def test_existing_resources_are_repaired_in_place_and_restored(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """A role trusting only a RAM principal gets one SAE statement appended (the other kept); an
    existing, unattached pull policy is attached, not recreated; a disabled internet endpoint is
    enabled. Teardown takes out exactly that statement, that attachment and that switch."""
    original = {"Version": "1", "Statement": [RAM_STATEMENT]}
    _create_role(fast_sdk, original)
    document = ram_policy.pull_policy(
        REGISTRY_UID, instance_id="cri-demo", namespace="shop", repo="web"
    )
    fast_sdk.ram().create_policy(
        ram_models.CreatePolicyRequest(
            policy_name=ROLE, policy_document=ram_policy.to_text(document)
        )
    )
    fast_sdk.cr().update_instance_endpoint_status(
        cr_models.UpdateInstanceEndpointStatusRequest(
            instance_id="cri-demo", endpoint_type="internet", enable=False, module_name="Registry"
        )
    )
    before = normalized(world.state())
    spec = make_spec()
    result = deploy(spec).result
    planned = actions(result)
    assert (planned["role"], planned["policy"]) == ("update trust", "attach")
    assert planned["whitelist"] == f"enable + add {EIP}/32"
    made = {(c.resource_type, c.action) for c in result.changes}
    assert {("ram.role", "trust-merged"), ("ram.attachment", "attached")} <= made
    assert ("cr.internet-endpoint", "enabled") in made
    assert not {("ram.role", "created"), ("ram.policy", "created")} & made
    merged = ram_policy.statements(_trust(fast_sdk))
    assert merged[0] == RAM_STATEMENT
    assert len(merged) == 2
    assert ram_policy.sae_trust_verdict(_trust(fast_sdk), APP_UID) == "allowed"
    assert _running(fast_sdk, result.app_id) == RUNNING_2
    _torn_down_to(world, spec, before)
    assert _trust(fast_sdk) == original


def _policy_document(sdk: SdkFactory) -> dict[str, Any]:
    request = ram_models.GetPolicyRequest(policy_name=ROLE, policy_type="Custom")
    body = sdk.ram().get_policy(request).body
    return ram_policy.parse(body.default_policy_version.policy_document)


def _no_version_counter(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_version_counter(v) for k, v in value.items() if k != "NextVersion"}
    return value


def _old_product_setup(sdk: SdkFactory) -> None:
    """What a deploy before issue 13 left in account B: the role trusted by A's SAE and the pull
    policy (its description, attached) with cr:GetAuthorizationToken scoped to cri-demo."""
    _create_role(sdk, ram_policy.sae_trust_policy(APP_UID))
    ram = sdk.ram()
    ram.create_policy(
        ram_models.CreatePolicyRequest(
            policy_name=ROLE,
            policy_document=instance_scoped_pull_policy(),
            description=ram_policy.managed_description("shop-web", APP_UID),
        )
    )
    ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=ROLE, role_name=ROLE)
    )


def test_a_policy_written_before_issue_13_is_upgraded_and_the_app_runs(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """ACR checks cr:GetAuthorizationToken on `*` only, so the old policy gave SAE no token. A
    re-deploy finds it drifted, makes a new default version granting the token on `*` (the
    other actions stay on the instance and repository), and the app runs; teardown gives the
    policy back as it found it."""
    _old_product_setup(fast_sdk)
    assert not ram_policy.grants_login(_policy_document(fast_sdk))
    before = normalized(world.state())
    spec = make_spec()
    result = deploy(spec).result
    planned = actions(result)
    assert (planned["role"], planned["policy"]) == (OK, "new version")
    assert ("ram.policy-version", "created") in {
        (c.resource_type, c.action) for c in result.changes
    }
    wanted = ram_policy.pull_policy(
        REGISTRY_UID, instance_id="cri-demo", namespace="shop", repo="web"
    )
    assert ram_policy.same_document(_policy_document(fast_sdk), wanted)
    assert _running(fast_sdk, result.app_id) == RUNNING_2
    tear_down(spec)
    # RAM never reuses a version id, so the policy's version counter has moved on past v2.
    assert _no_version_counter(normalized(world.state())) == _no_version_counter(before)
    assert _policy_document(fast_sdk) == ram_policy.parse(instance_scoped_pull_policy())


@flow
def _root_cause_now(spec: DeploySpec) -> str:
    """The diagnosis's re-check on its own (its inspections run as tasks)."""
    return root_cause(spec, resolve_accounts(spec))


def test_a_token_denial_is_diagnosed_with_its_fix(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """After a good deploy the pull policy goes back to the token scoped to the instance: the
    re-checked root cause names the action, the resource ACR checks it on, and the fix."""
    spec = make_spec()
    assert deploy(spec).result.outcome == "deployed"
    fast_sdk.ram().create_policy_version(
        ram_models.CreatePolicyVersionRequest(
            policy_name=ROLE, policy_document=instance_scoped_pull_policy(), set_as_default=True
        )
    )
    cause = _root_cause_now(spec)
    assert cause.startswith(
        f"Root cause (re-checked now): policy ({ROLE}): The default version v2 "
    )
    assert 'does not allow cr:GetAuthorizationToken on "Resource": "*"' in cause
    assert "Fix: deploy again" in cause


def test_a_deny_on_sae_blocks_until_exclusive_trust(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """A Deny naming A's SAE is BLOCKED with zero writes; exclusive_trust replaces the trust,
    the app runs, and teardown puts the old trust back."""
    original = {"Version": "1", "Statement": [RAM_STATEMENT, DENY_SAE]}
    _create_role(fast_sdk, original)
    before = normalized(world.state())
    writes = len(world.writes())
    error = deploy(make_spec()).error
    assert error.plan is not None
    [row] = error.plan.blocked
    assert (row.step, row.resource, row.now) == ("role", ROLE, f"denies {APP_UID}@sae.aliyuncs.com")
    assert "no Allow can override a Deny" in row.reason
    assert "access.exclusive_trust: true" in row.reason
    assert len(world.writes()) == writes
    spec = make_spec(access={"exclusive_trust": True})
    result = deploy(spec).result
    assert actions(result)["role"] == "update trust"
    assert ram_policy.same_document(_trust(fast_sdk), ram_policy.sae_trust_policy(APP_UID))
    assert _running(fast_sdk, result.app_id) == RUNNING_2
    _torn_down_to(world, spec, before)
    assert _trust(fast_sdk) == original


BLOCKED_CASES: dict[str, tuple[dict[str, dict[str, Any]], str, str]] = {
    "tag-missing": (
        {"image": {"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:9.9"}},
        "image",
        "Tag 9.9 does not exist in shop/web (newest tags: 1.1, 1.0).",
    ),
    "no-egress": (
        {"app": {"namespace": "cn-hangzhou:isolated"}},
        "network",
        "vsw-app-b (172.16.2.0/24) has no way to the internet, so SAE cannot reach "
        "demo-registry.cn-hangzhou.cr.aliyuncs.com. Add an SNAT entry for vsw-app-b on ngw-app, "
        "use a namespace whose vSwitch has one, or pull over the VPC domain "
        "(demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com).",
    ),
    "unknown-namespace": (
        {"app": {"namespace": "cn-hangzhou:nowhere"}},
        "network",
        "SAE namespace cn-hangzhou:nowhere does not exist in account A in cn-hangzhou",
    ),
}


@pytest.mark.parametrize("case", list(BLOCKED_CASES))
def test_an_unfixable_precondition_is_refused_with_zero_writes(
    world: SandboxAdmin, case: str
) -> None:
    """The plan is BLOCKED, names the step and the reason, and nothing is written."""
    sections, step, reason = BLOCKED_CASES[case]
    error = deploy(make_spec(**sections)).error
    assert error.message.startswith("The plan is blocked; nothing was changed.")
    assert error.plan is not None
    first = error.plan.blocked[0]
    assert (first.step, first.action) == (step, BLOCKED)
    assert reason in first.reason
    assert reason in error.message
    assert world.writes() == []


# -- a failed change order -------------------------------------------------------------------------


def test_an_endpoint_still_switching_on_is_named_as_the_root_cause(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """The ACL admits the EIP, but the endpoint was just switched on again and is CREATING: the
    re-check names that, not 'everything is in place'."""
    client = fast_sdk.cr()
    client.create_instance_endpoint_acl_policy(
        cr_models.CreateInstanceEndpointAclPolicyRequest(
            instance_id="cri-demo", endpoint_type="internet", entry=f"{EIP}/32"
        )
    )
    for seconds, enable in ((0.0, False), (60.0, True)):
        world.set_timing(endpoint_transition_seconds=seconds)
        client.update_instance_endpoint_status(
            cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id="cri-demo", endpoint_type="internet", enable=enable
            )
        )
    spec = make_spec(access=secret_access())

    @flow
    def recheck() -> str:
        return root_cause(spec, resolve_accounts(spec))

    assert recheck() == (
        "Root cause (re-checked now): the internet endpoint of cri-demo is CREATING, not RUNNING "
        "yet, so pulls over the public domain do not get through. Fix: wait until it is RUNNING; "
        "a new deploy waits for it."
    )


@dataclass(frozen=True)
class Failure:
    good: Run
    outcome: RunOutcome
    flow_run_ids: list[UUID]
    rollbacks: int
    ledger: dict[str, Any]
    calls: list[str]
    """The failed deploy's calls, action by action (its diagnosis and rollback included)."""


@pytest.fixture(scope="module")
def failed_deploy(blocks: None, fast_sandbox_process: SandboxProcess) -> Iterator[Failure]:
    """Deploy 1.1 (secret), delete the EIP from cri-demo's ACL, then deploy 1.0 with
    `network.whitelist: none`: the pull times out."""
    started = datetime.now(UTC)
    admin = _fresh(fast_sandbox_process)
    sdk = SdkFactory(fast_sandbox_process.endpoint)
    good = deploy(make_spec(access=secret_access()))
    assert good.result.outcome == "deployed"
    unwhitelist_eip(sdk)
    bad = make_spec(
        access=secret_access(),
        image={"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"},
        network={"whitelist": "none"},
    )
    seen = len(admin.requests())
    outcome = run_deploy(bad, dry_run=False)
    calls = [r["action"] for r in admin.requests()[seen:]]
    rollbacks = [r for r in admin.requests() if r["action"] == "RollbackApplication"]
    yield Failure(good, outcome, flow_runs_since(started), len(rollbacks), ledgers(), calls)
    admin.close()


def test_a_failed_change_order_ends_failed_with_its_diagnosis_and_no_traceback(
    failed_deploy: Failure,
) -> None:
    """The diagnosis is the failed run's state message; no line of its log has a traceback."""
    runs = failed_deploy.flow_run_ids  # the good deploy's, and the failed one's
    assert failed_deploy.outcome.message in state_messages(runs)
    lines = [log.message for log in logs_of(runs)]
    assert [line for line in lines if "Traceback" in line or "unexpected exception" in line] == []


def test_a_failed_change_order_is_diagnosed(failed_deploy: Failure) -> None:
    """Where it failed, SAE's reason, the instances, the root cause found by re-checking, and
    the rollback (which fails too: the whitelist is still missing)."""
    outcome = failed_deploy.outcome
    assert not outcome.ok
    message = outcome.message
    assert 'stage "Deploy", task "Pull image"' in message
    assert "i/o timeout" in message
    assert "Instances: 2 × ErrImagePull, 2 × Running" in message  # noqa: RUF001
    assert (
        "Root cause (re-checked now): EIP 47.96.10.20, the egress of vsw-app-h, is not in the "
        "internet ACL of cri-demo" in message
    )
    assert failed_deploy.rollbacks == 1
    rollback = message.splitlines()[-1]
    assert rollback.startswith("Rollback to version ")
    assert "(image demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1) did not land" in rollback
    assert rollback.endswith("ended failed.")


def test_the_diagnosis_rereads_only_what_can_have_changed(failed_deploy: Failure) -> None:
    """The root cause is found by reading again what anyone can change (the egress, the ACL, the
    tag, the secret), not the app's VPC and vSwitch, the registry instance and repository, or the
    app just deployed; the rollback reuses the instances the diagnosis listed."""
    calls = failed_deploy.calls
    fixed = {
        "DescribeNamespaceList", "DescribeVSwitchAttributes", "DescribeVpcAttribute",
        "GetInstance", "GetRepository", "ListApplications", "DescribeApplicationConfig",
        "DescribeApplicationGroups",
    }  # fmt: skip
    assert {a: calls.count(a) for a in fixed} == dict.fromkeys(fixed, 1), calls
    again = {"DescribeNatGateways", "DescribeSnatTableEntries", "GetRepoTag"}
    assert {a: calls.count(a) for a in again} == dict.fromkeys(again, 2), calls
    assert calls.count("GetInstanceEndpoint") == 1  # whitelist none: read by the diagnosis only


def test_rollback_returns_to_the_last_good_version(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """Personal Edition tags cannot be checked by the plan, so a missing one fails at the pull;
    the rollback to the good version succeeds. With rollback_on_failure false none is tried.
    (The first deploy is also the Personal Edition + ram-role deploy.)"""
    good = deploy(make_spec(image=personal_image())).result
    assert (actions(good)["role"], actions(good)["policy"]) == ("create", "create + attach")
    _personal_checks(good, fast_sdk)
    app_id = good.app_id
    assert app_id is not None
    missing = personal_image(PERSONAL_IMAGE.replace(":1.0", ":9.9"))
    outcome = run_deploy(make_spec(image=missing), dry_run=False)
    assert not outcome.ok
    assert 'task "Pull image"' in outcome.message
    assert "shop-personal/web:9.9: not found" in outcome.message
    assert "Instances: 2 × ErrImagePull, 2 × Running" in outcome.message  # noqa: RUF001
    assert "every step of the pull path is in place now" in outcome.message
    assert "Rolled back to version" in outcome.message
    assert outcome.message.endswith("succeeded.")
    assert app_status(fast_sdk, app_id) == (*RUNNING_2, PERSONAL_IMAGE)
    rollbacks = sum(1 for r in world.requests() if r["action"] == "RollbackApplication")
    assert rollbacks == 1
    kept = make_spec(image=missing, rollout={"rollback_on_failure": False})
    outcome = run_deploy(kept, dry_run=False)
    assert not outcome.ok
    assert "Pull image" in outcome.message
    assert "Roll" not in outcome.message
    assert sum(1 for r in world.requests() if r["action"] == "RollbackApplication") == rollbacks
    _current, _, counts, image = app_status(fast_sdk, app_id)
    assert counts == {"ErrImagePull": 2, "Running": 2}
    assert image == missing["url"]


def _looked_up(read: Callable[[], T]) -> T | None:
    """A person's console read: a page that failed to load (a network error on a loaded test
    machine) is simply looked at again on the next poll."""
    try:
        return read()
    except UnretryableException:
        return None


def _console_person(
    sdk: SdkFactory, app_id: str, deployed: str, errors: list[BaseException]
) -> None:
    """What a person at the SAE console does during the batch release: once batch 1 is done,
    take the EIP off the registry's ACL (by mistake) and confirm batch 2; once the run's rollback
    has started, put the EIP back."""

    deadline = time.monotonic() + 60

    def newest_order(other_than: str) -> str:
        while (newest := _looked_up(lambda: status(sdk, app_id).last_change_order_id)) in (
            other_than,
            None,
            "",
        ):
            assert time.monotonic() < deadline, f"no change order after {other_than}"
            time.sleep(0.02)
        return str(newest)

    try:
        release = newest_order(deployed)
        waiting = wait_for(sdk, release, until={8, 2, 3})
        assert waiting.status == 8, waiting.status
        unwhitelist_eip(sdk)
        sdk.sae().confirm_pipeline_batch(
            sae_models.ConfirmPipelineBatchRequest(
                pipeline_id=waiting.pipelines[1].pipeline_id, confirm=True
            )
        )
        newest_order(release)
        whitelist(sdk)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_a_later_batch_failing_is_diagnosed_and_rolled_back_at_once(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """Batch 2 of 2 fails: SAE keeps the order executing with SubStatus 1 (abnormal) until it is
    rolled back. The run takes that as the failure it is, at once (not after
    rollout.timeout_seconds): diagnosis, then AbortAndRollbackChangeOrder, as RollbackApplication
    is refused while the order executes; SAE's rollback lands on the version that ran."""
    world.set_timing(change_order_seconds=3)  # the EIP is put back well before the rollback pulls
    try:
        good = deploy(make_spec()).result
        assert good.app_id is not None and good.change_order_id is not None
        errors: list[BaseException] = []
        person = threading.Thread(
            target=_console_person,
            args=(fast_sdk, good.app_id, good.change_order_id, errors),
            daemon=True,
        )
        person.start()
        older = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"
        spec = make_spec(
            image={"url": older},
            rollout={"batches": 2, "confirm": "manual", "timeout_seconds": 60},
        )
        started = time.monotonic()
        outcome = run_deploy(spec, dry_run=False)
        took = time.monotonic() - started
        person.join(timeout=60)
        assert not person.is_alive() and not errors, [f"{type(e).__name__}: {e}" for e in errors]
    finally:
        world.set_timing(change_order_seconds=FAST_TIMING["change_order_seconds"])
    assert not outcome.ok
    assert took < spec.rollout.timeout_seconds / 2, took
    message = outcome.message
    assert 'failed at batch 2/2, stage "Deploy", task "Pull image"' in message
    assert "SAE keeps it executing (SubStatus 1, abnormal) until it is rolled back" in message
    assert "i/o timeout" in message
    assert "Instances: 1 × ErrImagePull, 2 × Running" in message  # noqa: RUF001
    assert "Root cause (re-checked now): EIP 47.96.10.20, the egress of vsw-app-h" in message
    assert message.splitlines()[-1].startswith("Rolled back: change order ")
    assert message.endswith("succeeded.")
    called = [r["action"] for r in world.requests()]
    assert (called.count("AbortAndRollbackChangeOrder"), called.count("RollbackApplication")) == (
        1,
        0,
    )
    assert app_status(fast_sdk, good.app_id) == (*RUNNING_2, EE_IMAGE)


def test_rollback_skips_the_failed_version_listed_newest(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """ListAppVersions lists the failed release too, newest first, and says nothing of how it
    went; the rollback goes to the newest version that ran with another image: the second of
    three, not the failed third nor the older first."""
    public, vpc = PERSONAL_IMAGE, PERSONAL_IMAGE.replace("registry.", "registry-vpc.")
    first = deploy(make_spec(image=personal_image(public))).result
    assert deploy(make_spec(image=personal_image(vpc))).result.outcome == "deployed"
    missing = public.replace(":1.0", ":9.9")
    outcome = run_deploy(make_spec(image=personal_image(missing)), dry_run=False)
    assert not outcome.ok
    assert first.app_id is not None
    versions = (
        fast_sdk.sae()
        .list_app_versions(sae_models.ListAppVersionsRequest(app_id=first.app_id))
        .body.data
    )
    assert [v.build_package_url for v in versions] == [missing, vpc, public]
    assert f"Rolled back to version {versions[1].id} (image {vpc})" in outcome.message
    assert outcome.message.endswith("succeeded.")
    assert app_status(fast_sdk, first.app_id) == (*RUNNING_2, vpc)


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_appears_in_results_artifacts_ledger_logs_or_events(
    journey: Journey, failed_deploy: Failure
) -> None:
    """Registry passwords and access key secrets appear nowhere Prefect keeps text, after
    successful runs and after a failed one."""
    runs = [
        journey.planned.flow_run_id,
        journey.deployed.flow_run_id,
        journey.rerun.flow_run_id,
        journey.removed.flow_run_id,
        *failed_deploy.flow_run_ids,
    ]
    texts = [
        repr(journey.planned.result),
        repr(journey.deployed.result),
        repr(journey.rerun.result),
        repr(journey.removed.result),
        failed_deploy.outcome.message,
        repr(failed_deploy.outcome.plan),
        json.dumps(journey.ledger),
        json.dumps(failed_deploy.ledger),
    ]
    artifacts = artifacts_of(runs)
    logs = logs_of(runs)
    deployed = events_of(journey.deployed.flow_run_id, at_least=1)
    events = [e for run in runs for e in events_of(run, at_least=0, timeout=0)]
    assert len(failed_deploy.flow_run_ids) == 2
    assert artifacts and logs and deployed
    texts += [f"{a.key} {a.data} {a.description}" for a in artifacts]
    texts += [log.message for log in logs]
    texts += [e.model_dump_json() for e in events]
    texts += state_messages(runs)
    texts += [as_read_back(run)[2] for run in runs]  # the persisted results, as stored
    assert leaked(texts) == []
    assert leaked([*texts, "x sandbox-registry-login"]) == ["sandbox-registry-login"]


def test_a_blocked_plan_ends_failed_with_its_reason_and_no_traceback(world: SandboxAdmin) -> None:
    """An expected failure, as a worker runs it: the flow run ends Failed with the reason as its
    state message and its error as its result; no line of the run's log carries a traceback."""
    from flows.cross_account_deploy import cross_account_deploy
    from flows.landing import DeployError

    since = datetime.now(UTC)
    spec = make_spec(app={"namespace": "cn-hangzhou:isolated"})
    state = cross_account_deploy(spec=spec, return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, DeployError)
    assert state.message == error.message
    assert error.message.startswith("The plan is blocked; nothing was changed.\n  network: ")
    run_ids = flow_runs_since(since)
    assert state_messages(run_ids) == [error.message]
    lines = [log.message for log in logs_of(run_ids)]
    assert [line for line in lines if "Traceback" in line or "unexpected exception" in line] == []
    assert world.writes() == []
