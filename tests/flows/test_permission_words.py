"""A deploy whose identity lacks a RAM permission says so in words (issue 17, item 4): which
account, which identity (its ARN), which action on which resource, and that granting it is the
fix; nothing is written. Account B's block here is a RAM user (the sandbox judges a user by its
policies) that may use ACR but not RAM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from blocks import AlibabaCloudCredentials
from sandbox.testing import SandboxAdmin, SandboxProcess
from tasks.step import PermissionDeniedError
from tests.support.clients import KEYS, UIDS
from tests.support.deploy_support import deploy, forget_ledgers, save_blocks
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data, fresh_admin, write_world

USER_KEY = ("LTAIuserCrOnly00001", "cr-only-secret")
ACCOUNTS = {"app": "perm-app", "registry": "perm-registry"}


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    data = demo_world_data(**FAST_TIMING)
    registry = data["ram"].setdefault("registry", {})
    registry["users"] = [
        {
            "name": "cr-only",
            "access_keys": [{"id": USER_KEY[0], "secret": USER_KEY[1]}],
            "policies": ["AliyunContainerRegistryFullAccess", "AliyunVPCReadOnlyAccess"],
        }
    ]
    path = write_world(data, tmp_path_factory.mktemp("permission-world"))
    with SandboxProcess(world=path) as started:
        yield started


@pytest.fixture
def admin(prefect_harness: None, process: SandboxProcess, tmp_path: Path) -> Iterator[SandboxAdmin]:
    forget_ledgers()
    save_blocks(process.url)
    key_id, secret = KEYS["app"]
    for name, (key, value) in (("app", (key_id, secret)), ("registry", USER_KEY)):
        AlibabaCloudCredentials(
            access_key_id=key, access_key_secret=SecretStr(value), endpoint=process.url
        ).save(ACCOUNTS[name], overwrite=True)
    yield from fresh_admin(process)


def test_a_missing_permission_names_account_identity_action_and_resource(
    admin: SandboxAdmin,
) -> None:
    run = deploy(make_spec(accounts=ACCOUNTS))
    assert run.state.is_failed()
    error = run.state.result(raise_on_failure=False)
    assert isinstance(error, PermissionDeniedError), repr(error)
    registry = UIDS["registry"]
    assert str(error).startswith(
        f"role: account B ({registry}) refused acs:ram::{registry}:user/cr-only the action "
        f"ram:GetRole on acs:ram:*:{registry}:role/sae-pull-shop-web (NoPermission: no policy "
        "of it allows it). Grant"
    ), str(error)
    assert admin.writes() == []
