"""A deploy whose identity lacks a RAM permission says so in words (issue 17, item 4): which
account, which identity (its ARN), which action on which resource, and that granting it is the
fix; nothing is written. The preflight reads the identity's own policies and names everything
missing before the first call a step makes; a refusal it could not foresee (a grant or denial
the identity cannot read) is told by the step itself. Account B's block here is a RAM user (the
sandbox judges a user by its policies) that may use ACR but not RAM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from pydantic import SecretStr

from blocks import AlibabaCloudCredentials
from crossdeploy.permissions import Identity
from flows.landing import DeployError
from sandbox.testing import SandboxAdmin, SandboxProcess
from tasks import pull_role
from tasks.step import Accounts, Inspection, PermissionDeniedError
from tests.support.clients import KEYS, UIDS, SdkFactory, sandbox_credentials
from tests.support.deploy_support import deploy, forget_ledgers, save_blocks
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data, fresh_admin, write_world

USER_KEY = ("LTAIuserCrOnly00001", "cr-only-secret")
ACCOUNTS = {"app": "perm-app", "registry": "perm-registry"}
OWN_READS = "cr-only-own-reads"
NOTHING_NEW = {"Effect": "Allow", "Action": "cr:GetInstance", "Resource": "*"}
"""What the policy grants until a test lets the user read its own policies."""


def document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "1", "Statement": statements}


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    data = demo_world_data(**FAST_TIMING)
    registry = data["ram"].setdefault("registry", {})
    registry["users"] = [
        {
            "name": "cr-only",
            "access_keys": [{"id": USER_KEY[0], "secret": USER_KEY[1]}],
            "policies": [
                "AliyunContainerRegistryFullAccess",
                "AliyunVPCReadOnlyAccess",
                OWN_READS,
            ],
        }
    ]
    registry.setdefault("policies", []).append(
        {"name": OWN_READS, "document": json.dumps(document([NOTHING_NEW]))}
    )
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


def test_a_deploy_short_of_permissions_stops_before_any_write_naming_each(
    admin: SandboxAdmin, process: SandboxProcess
) -> None:
    grant_own_reads(process)
    since = len(admin.requests())
    run = deploy(make_spec(accounts=ACCOUNTS))

    error = run.state.result(raise_on_failure=False)
    assert isinstance(error, DeployError), repr(error)
    registry = UIDS["registry"]
    role = f"acs:ram:*:{registry}:role/sae-pull-shop-web"
    assert error.message.startswith(
        f"Missing permissions; nothing was changed.\n  B: acs:ram::{registry}:user/cr-only "
        f"lacks ram:AttachPolicyToRole on acs:ram:*:{registry}:policy/sae-pull-shop-web; "
        f"ram:AttachPolicyToRole on {role}; "
    ), error.message
    assert f"ram:GetRole on {role}" in error.message
    assert "`crossdeploy permissions SPEC` prints the whole policy" in error.message
    assert error.plan is not None and [r.step for r in error.plan.rows] == ["permissions"]
    assert [r for r in admin.requests()[since:] if r["write"]] == []


def test_an_identity_that_may_not_read_its_own_policies_is_stopped_first(
    admin: SandboxAdmin,
) -> None:
    run = deploy(make_spec(accounts=ACCOUNTS))

    error = run.state.result(raise_on_failure=False)
    assert isinstance(error, DeployError), repr(error)
    registry = UIDS["registry"]
    assert (
        f"acs:ram::{registry}:user/cr-only may not read its own policies "
        f"(ram:ListPoliciesForUser on acs:ram:*:{registry}:user/cr-only refused: NoPermission)"
    ) in error.message
    assert admin.writes() == []


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted:UserWarning")
def test_a_step_refused_by_what_the_preflight_cannot_see_says_it_in_words(
    admin: SandboxAdmin, process: SandboxProcess
) -> None:
    """A grant or denial the identity cannot read (a session policy, a resource-group scope)
    shows at the step: which account, which identity, which action on which resource."""
    spec = make_spec(accounts=ACCOUNTS)
    registry = UIDS["registry"]
    user = AlibabaCloudCredentials(
        access_key_id=USER_KEY[0], access_key_secret=SecretStr(USER_KEY[1]), endpoint=process.url
    )
    accounts = Accounts(
        sandbox_credentials(process.url, "app").in_region(spec.app.region),
        user.in_region(spec.image.ref.region),
        UIDS["app"],
        registry,
        app_arn=f"acs:ram::{UIDS['app']}:root",
        registry_arn=f"acs:ram::{registry}:user/cr-only",
    )

    with pytest.raises(PermissionDeniedError) as refused:
        pull_role.STEP.inspect_task(accounts, spec, Inspection())

    assert str(refused.value) == (
        f"role: account B ({registry}) refused acs:ram::{registry}:user/cr-only the action "
        f"ram:GetRole on acs:ram:*:{registry}:role/sae-pull-shop-web (NoPermission: no policy "
        f"of it allows it). Grant acs:ram::{registry}:user/cr-only ram:GetRole on "
        f"acs:ram:*:{registry}:role/sae-pull-shop-web in account B's RAM console (`crossdeploy "
        "permissions SPEC` prints every permission the run needs), then run again: nothing "
        "after this step was written."
    )
    assert admin.writes() == []


def grant_own_reads(process: SandboxProcess) -> None:
    """Let cr-only read its own policies, as `crossdeploy permissions` prints them (a new default
    version of its custom policy, written with account B's root keys)."""
    reads = Identity.of(f"acs:ram::{UIDS['registry']}:user/cr-only").own_policy_reads()
    statements = [{"Effect": "Allow", "Action": p.action, "Resource": p.resource} for p in reads]
    request = ram_models.CreatePolicyVersionRequest(
        policy_name=OWN_READS, policy_document=json.dumps(document(statements)), set_as_default=True
    )
    SdkFactory(process.url).ram("registry").create_policy_version(request)
