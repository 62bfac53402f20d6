"""Durable, serialized, resettable state, and a state dump that never shows a secret.

An acknowledged write must survive `kill -9` of the sandbox, concurrent writers must not lose
each other's work, and `reset` must give back exactly the world file's starting point.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import World
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.policies import trust
from tests.support.ram_setup import assume, create_role, list_roles, make_role

POLICY_V1 = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:Get*", "Resource": "*"}]}
)
POLICY_V2 = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:List*", "Resource": "*"}]}
)

_TIME_KEYS = ("Time", "Date", "_ms")


def without_times(value: Any) -> Any:
    """A state dump with its clock readings blanked: seeding stamps the time it ran."""
    if isinstance(value, dict):
        return {k: "<t>" if k.endswith(_TIME_KEYS) else without_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    """A role and a new default policy version written before SIGKILL are there after restart."""
    state = tmp_path / "state.sqlite"
    first = SandboxProcess(state=state)
    try:
        first.start()
        factory = SdkFactory(first.endpoint)
        role_id = create_role(factory, "survivor").body.role.role_id
        ram = factory.ram("registry")
        ram.create_policy(
            ram_models.CreatePolicyRequest(policy_name="durable", policy_document=POLICY_V1)
        )
        ram.create_policy_version(
            ram_models.CreatePolicyVersionRequest(
                policy_name="durable", policy_document=POLICY_V2, set_as_default=True
            )
        )
    finally:
        first.kill()

    with SandboxProcess(state=state) as second:
        ram = SdkFactory(second.endpoint).ram("registry")
        role = ram.get_role(ram_models.GetRoleRequest(role_name="survivor")).body.role
        assert role.role_id == role_id
        versions = ram.list_policy_versions(
            ram_models.ListPolicyVersionsRequest(policy_name="durable", policy_type="Custom")
        ).body.policy_versions.policy_version
        assert [(v.version_id, v.is_default_version) for v in versions] == [
            ("v2", True),
            ("v1", False),
        ]
        assert json.loads(versions[0].policy_document) == json.loads(POLICY_V2)


def test_concurrent_writes_all_land(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """Twenty clients creating twenty roles at the same moment: all succeed, none is lost."""
    names = [f"parallel-{i:02d}" for i in range(20)]
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def create(name: str) -> None:
        start.wait()
        try:
            create_role(sdk, name)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(list_roles(sdk, "registry")) == names
    statuses = [r["status"] for r in admin.requests() if r["action"] == "CreateRole"]
    assert statuses == [200] * len(names)


def test_reset_returns_to_the_worlds_initial_state(
    sdk: SdkFactory, admin: SandboxAdmin, sandbox_process: SandboxProcess
) -> None:
    """Resources, minted keys, fault rules and the request log all go back to the start."""
    initial = without_times(admin.state())
    arn = make_role(sdk, "temporary", trust(ram=[UIDS["app"]]))
    creds = assume(sdk, arn).credentials
    sdk.ram("app").create_policy(
        ram_models.CreatePolicyRequest(policy_name="scratch", policy_document=POLICY_V1)
    )
    admin.set_faults({"product": "ram", "latency_ms": 1})
    assert without_times(admin.state()) != initial

    admin.reset()
    assert without_times(admin.state()) == initial
    assert admin.requests() == []
    faults = httpx.get(f"{sandbox_process.url}/_sandbox/faults", trust_env=False, timeout=30)
    assert faults.json() == {"rules": []}
    with pytest.raises(ClientException) as gone:
        sdk.sts(
            key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token
        ).get_caller_identity()
    assert gone.value.code == "InvalidAccessKeyId.NotFound"
    assert list_roles(sdk, "registry") == []


def test_state_dump_names_accounts_and_hides_secrets(
    sdk: SdkFactory, admin: SandboxAdmin, demo_world: World
) -> None:
    """Resources are filed under account names; no secret value of the world or of STS leaks."""
    create_role(sdk, "visible")
    arn = make_role(sdk, "assumable", trust(ram=[UIDS["app"]]))
    creds = assume(sdk, arn).credentials
    state = admin.state()

    assert {"app", "registry"} <= set(state)
    assert "visible" in state["registry"]["global"]["ram_role"]
    assert "ram_role" not in state["app"].get("global", {})
    dump = json.dumps(state)
    secrets = [
        *(secret for _, secret in KEYS.values()),
        *(key.secret for account in demo_world.accounts for key in account.access_keys),
        *(
            instance.login.password
            for region in demo_world.regions.values()
            for instance in region.acr_instances
        ),
        creds.access_key_secret,
        creds.security_token,
    ]
    for secret in secrets:
        assert secret not in dump
    assert creds.access_key_id in dump
