"""Faults the cloud throws at a deploy, injected by the sandbox's fault rules (issue 6, item 1).

Every write the flow makes meets the fault at once (one rule per write action of the sandbox), so
one flow run per scenario proves it for all of them; the request log shows what each write went
through and a census of both accounts shows exactly one of everything and nothing extra.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models

from crossdeploy import ram_policy
from crossdeploy.spec import DeploySpec
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.deploy_support import (
    APP_UID,
    EE_LOGIN,
    REGISTRY_UID,
    Run,
    deploy,
    save_blocks,
    secret_access,
    unwhitelist_eip,
)
from tests.support.reliability_support import (
    RAM_ROLE_ADDS,
    SECRET_ADDS,
    added,
    answered,
    eip_entries,
    every_write,
    statuses,
    wait_for,
)
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data, write_world

ROLE = "sae-pull-shop-web"
OLD_IMAGE = {"url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.0"}
FRESH_WRITES = {
    "ram-role": {
        "CreateRole",
        "CreatePolicy",
        "AttachPolicyToRole",
        "CreateInstanceEndpointAclPolicy",
        "CreateApplication",
    },
    "secret": {"CreateSecret", "CreateInstanceEndpointAclPolicy", "CreateApplication"},
}
REPAIR_WRITES = {
    "ram-role": {
        "UpdateRole",
        "CreatePolicyVersion",
        "AttachPolicyToRole",
        "UpdateInstanceEndpointStatus",
        "CreateInstanceEndpointAclPolicy",
        "DeployApplication",
    },
    "secret": {
        "UpdateSecret",
        "UpdateInstanceEndpointStatus",
        "CreateInstanceEndpointAclPolicy",
        "DeployApplication",
    },
}
REPAIR_ADDS = {
    "ram-role": {
        "registry:ram_policy_version": 1,
        "registry:ram_attachment": 1,
        "registry:acl_entry": 1,
        "app:sae_change_order": 1,
    },
    "secret": {"registry:acl_entry": 1, "app:sae_change_order": 1},
}


def _spec(method: str, **sections: dict[str, Any]) -> DeploySpec:
    return (
        make_spec(access=secret_access(), **sections)
        if method == "secret"
        else make_spec(**sections)
    )


def _writes_line(log: list[dict[str, Any]]) -> str:
    return ", ".join(f"{a} {'/'.join(map(str, s))}" for a, s in sorted(statuses(log).items()))


def _counts_line(adds: dict[str, int]) -> str:
    return ", ".join(f"+{n} {kind.split(':')[1]}" for kind, n in adds.items())


def _deployed(run: Run, world: SandboxAdmin, before: dict[str, Any]) -> dict[str, Any]:
    """The run deployed (RUNNING, all replicas verified); the state it left."""
    assert run.result.outcome == "deployed", run.result.message
    after = world.state()
    assert eip_entries(after) == 1
    apps = after["app"]["cn-hangzhou"]["sae_app"]
    assert [a["AppName"] for a in apps.values()] == ["shop-web"]
    return after


FAULTS: dict[str, tuple[dict[str, Any], list[int]]] = {
    "503 twice": ({"error": "ServiceUnavailable", "status": 503, "times": 2}, [503, 503, 200]),
    "reply lost": ({"lose_response": True, "times": 1}, [503]),
}


@pytest.mark.reliability("faults", "every write of a fresh deploy meets the fault")
@pytest.mark.parametrize("method", ["ram-role", "secret"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_write_survives_the_fault(
    world: SandboxAdmin, fault: str, method: str, record_property: Any
) -> None:
    """503 twice: each write is answered 503, 503, then done. Reply lost: each write is applied
    but answered 503, so the retry meets the resource already there and adopts it. Either way
    the deploy lands with exactly the resources a clean deploy makes."""
    rule, first = FAULTS[fault]
    before = world.state()
    world.set_faults(*every_write(**rule))
    run = deploy(_spec(method))
    log = world.requests()
    after = _deployed(run, world, before)
    seen = statuses(log)
    assert set(seen) == FRESH_WRITES[method]
    assert all(s[: len(first)] == first for s in seen.values()), seen
    adds = added(before, after)
    assert adds == (RAM_ROLE_ADDS if method == "ram-role" else SECRET_ADDS)
    record_property("outcome", f"deployed; {_counts_line(adds)}; writes: {_writes_line(log)}")


def _drift_ram_role(sdk: SdkFactory) -> None:
    """The role trusts only RAM, the policy's default version grants another repository and is
    detached: what a hand edit or another tool leaves."""
    ram = sdk.ram()
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": [f"acs:ram::{REGISTRY_UID}:root"]},
            }
        ],
    }
    ram.update_role(
        ram_models.UpdateRoleRequest(
            role_name=ROLE, new_assume_role_policy_document=ram_policy.to_text(trust)
        )
    )
    other = ram_policy.pull_policy(
        REGISTRY_UID, instance_id="cri-demo", namespace="shop", repo="api"
    )
    ram.create_policy_version(
        ram_models.CreatePolicyVersionRequest(
            policy_name=ROLE, policy_document=ram_policy.to_text(other), set_as_default=True
        )
    )
    ram.detach_policy_from_role(
        ram_models.DetachPolicyFromRoleRequest(
            policy_type="Custom", policy_name=ROLE, role_name=ROLE
        )
    )


def _drift_secret(sdk: SdkFactory) -> None:
    """The registry secret holds a stale password."""
    sae = sdk.sae()
    secret = sae.list_secrets(sae_models.ListSecretsRequest(namespace_id="cn-hangzhou:demo"))
    secret_id = secret.body.data.secrets[0].secret_id
    user, host = EE_LOGIN[0], "demo-registry.cn-hangzhou.cr.aliyuncs.com"
    auth = base64.b64encode(f"{user}:stale".encode()).decode()
    config = {"auths": {host: {"username": user, "password": "stale", "auth": auth}}}
    data = {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}
    sae.update_secret(
        sae_models.UpdateSecretRequest(
            namespace_id="cn-hangzhou:demo",
            secret_id=secret_id,
            secret_data=sae_models.UpdateSecretRequestSecretData(secret_data=json.dumps(data)),
        )
    )


def _close_registry(sdk: SdkFactory) -> None:
    """The app's EIP is off the registry ACL and the internet endpoint is switched off."""
    unwhitelist_eip(sdk)
    sdk.cr().update_instance_endpoint_status(
        cr_models.UpdateInstanceEndpointStatusRequest(
            instance_id="cri-demo", endpoint_type="internet", enable=False, module_name="Registry"
        )
    )


@pytest.mark.reliability(
    "faults", "every write of a repair (drifted resources, new image) meets 503 twice, then is "
    "applied with its reply lost",
)  # fmt: skip
@pytest.mark.parametrize("method", ["ram-role", "secret"])
def test_every_repair_write_survives_503s_and_a_lost_reply(
    world: SandboxAdmin, fast_sdk: SdkFactory, method: str, record_property: Any
) -> None:
    """Deploy 1.0, then drift what the run manages (trust, policy version and attachment or the
    secret's password; the whitelist) and deploy 1.1: each update write is answered 503, 503,
    then applied with its reply lost, and still exactly one new policy version, one attachment,
    one ACL entry and one change order result."""
    assert deploy(_spec(method, image=OLD_IMAGE)).result.outcome == "deployed"
    (_drift_ram_role if method == "ram-role" else _drift_secret)(fast_sdk)
    _close_registry(fast_sdk)
    before = world.state()
    log_start = len(world.requests())
    world.set_faults(
        *every_write(error="ServiceUnavailable", status=503, times=2),
        *every_write(lose_response=True, times=1),
    )
    run = deploy(_spec(method))
    log = world.requests()[log_start:]
    after = _deployed(run, world, before)
    seen = statuses(log)
    assert set(seen) == REPAIR_WRITES[method]
    assert all(s[:3] == [503, 503, 503] for s in seen.values()), seen
    adds = added(before, after)
    assert adds == REPAIR_ADDS[method]
    if method == "ram-role":
        role = fast_sdk.ram().get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
        trust = ram_policy.parse(str(role.assume_role_policy_document))
        assert len(ram_policy.statements(trust)) == 2
        assert ram_policy.sae_trust_verdict(trust, APP_UID) == "allowed"
    record_property("outcome", f"deployed; {_counts_line(adds)}; writes: {_writes_line(log)}")


@pytest.mark.reliability(
    "faults", "SAE throttles at 60 calls a minute and answers the first calls Throttling.User"
)
def test_sae_throttling_is_backed_off(world: SandboxAdmin, record_property: Any) -> None:
    """With SAE's limit of 60 calls a minute per account enforced and the first four SAE calls
    throttled, the deploy still lands: throttled calls are retried after a backoff, and the
    flow itself stays under the limit."""
    before = world.state()
    world.set_faults(
        {"product": "sae", "error": "Throttling.User", "status": 400, "times": 4},
        {"product": "sae", "throttle_per_minute": 60},
    )
    run = deploy(make_spec())
    log = world.requests()
    after = _deployed(run, world, before)
    assert added(before, after) == RAM_ROLE_ADDS
    sae = [e for e in log if e["product"] == "sae"]
    throttled = [e for e in sae if e["code"] == "Throttling.User"]
    assert len(throttled) == 4
    assert sae[-1]["started_at"] - sae[0]["started_at"] < 60
    assert len(sae) - len(throttled) <= 60
    record_property(
        "outcome",
        f"deployed; {len(sae)} SAE calls, {len(throttled)} answered Throttling.User and retried "
        f"after a backoff, none over the 60/min limit; 1 role, 1 policy version, 1 ACL entry, "
        "1 app",
    )


# -- the sandbox killed and restarted mid-run ------------------------------------------------------


@pytest.fixture
def restartable(tmp_path: Path, blocks: None) -> Iterator[tuple[SandboxProcess, Path]]:
    """A dedicated fast sandbox with a state file, so it can be SIGKILLed and started again on the
    same port and state."""
    world = write_world(demo_world_data(**FAST_TIMING), tmp_path)
    state = tmp_path / "state.db"
    process = SandboxProcess(world=world, state=state)
    process.start()
    yield process, world
    process.stop()


@pytest.mark.reliability(
    "faults", "the sandbox is SIGKILLed twice mid-run (after CreateRole; during the change "
    "order) and restarted on the same port and state",
)  # fmt: skip
def test_a_cloud_restart_mid_run_is_ridden_out(
    restartable: tuple[SandboxProcess, Path], record_property: Any
) -> None:
    """Calls made while the cloud is down fail to connect and are retried with backoff until it
    is back; the run ends deployed with exactly one of everything."""
    process, world_path = restartable
    save_blocks(process.url)
    admin = SandboxAdmin(process.url)
    port = int(process.url.rsplit(":", 1)[1])
    before = admin.state()
    spec = make_spec()
    outcome: list[Run | BaseException] = []

    def run() -> None:
        try:
            outcome.append(deploy(spec))
        except BaseException as exc:  # reported by the test thread
            outcome.append(exc)

    def restart() -> SandboxProcess:
        process.kill()
        again = SandboxProcess(world=world_path, state=process.state, port=port)
        again.start()
        return again

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for("CreateRole", admin, answered("CreateRole"), timeout=60)
        process = restart()
        wait_for("CreateApplication", admin, answered("CreateApplication"), timeout=60)
        process = restart()
    finally:
        thread.join(120)
    assert len(outcome) == 1 and isinstance(outcome[0], Run), outcome
    after = _deployed(outcome[0], admin, before)
    adds = added(before, after)
    assert adds == RAM_ROLE_ADDS
    process.stop()
    admin.close()
    record_property(
        "outcome", f"deployed by the same run (retries carried it through); {_counts_line(adds)}"
    )
