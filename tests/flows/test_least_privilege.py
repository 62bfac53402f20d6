"""`crossdeploy permissions` prints the least-privilege policy each account's identity needs, and
it is exactly enough (issue 17, item 3). Both blocks act as RAM users, judged by the sandbox by
their policies: given the printed plan-only policy, a plan runs with no call refused; given the
deploy policy, the demo deploys; given the teardown policy, teardown removes it all. With any one
action taken out of the deploy policy, the deploy stops at its preflight, naming the action, before
any write. The users' policy is switched between runs the way an operator would: a new default
version (RAM's CreatePolicyVersion, with the account's root keys)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks import AlibabaCloudCredentials
from cli.main import app as cli
from crossdeploy.plan import WARNING
from crossdeploy.spec import load_spec
from flows.landing import DeployError
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, SdkFactory
from tests.support.deploy_support import deploy, forget_ledgers, save_blocks, tear_down, write_spec
from tests.support.specs import spec_data
from tests.support.worlds import FAST_TIMING, demo_world_data, fresh_admin, write_world

POLICY = "crossdeploy-operator"
USERS = {
    "app": ("deployer-a", ("LTAIdeployerA000001", "deployer-a-secret")),
    "registry": ("deployer-b", ("LTAIdeployerB000001", "deployer-b-secret")),
}
BLOCKS = {"app": "least-app", "registry": "least-registry"}
PLACEHOLDER = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    data = demo_world_data(**FAST_TIMING)
    for account, (user, (key, secret)) in USERS.items():
        ram = data["ram"].setdefault(account, {})
        ram.setdefault("policies", []).append({"name": POLICY, "document": json.dumps(PLACEHOLDER)})
        ram["users"] = [
            {"name": user, "access_keys": [{"id": key, "secret": secret}], "policies": [POLICY]}
        ]
    path = write_world(data, tmp_path_factory.mktemp("least-privilege-world"))
    with SandboxProcess(world=path) as started:
        yield started


@pytest.fixture
def admin(prefect_harness: None, process: SandboxProcess) -> Iterator[SandboxAdmin]:
    forget_ledgers()
    save_blocks(process.url)
    for account, (_, (key, secret)) in USERS.items():
        AlibabaCloudCredentials(
            access_key_id=key, access_key_secret=SecretStr(secret), endpoint=process.url
        ).save(BLOCKS[account], overwrite=True)
    yield from fresh_admin(process)


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "shop-web.yaml", spec_data(accounts=BLOCKS))


def printed(spec_path: Path, *options: str) -> dict[str, Any]:
    """What `crossdeploy permissions SPEC --json` prints, parsed (stdout holds the JSON alone)."""
    result = CliRunner().invoke(cli, ["permissions", str(spec_path), "--json", *options])
    assert result.exit_code == 0, result.output
    policies: dict[str, Any] = json.loads(result.stdout)
    return policies


def grant(sdk: SdkFactory, account: str, document: dict[str, Any]) -> None:
    """Make `document` the user's policy: a new default version, as an operator would."""
    request = ram_models.CreatePolicyVersionRequest(
        policy_name=POLICY,
        policy_document=json.dumps(document),
        set_as_default=True,
        rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
    )
    sdk.ram(account).create_policy_version(request)


def without(document: dict[str, Any], action: str) -> dict[str, Any]:
    """The document with `action` taken out of every statement (empty statements dropped)."""
    statements = []
    for statement in document["Statement"]:
        actions = [a for a in statement["Action"] if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**document, "Statement": statements}


def actions(document: dict[str, Any]) -> list[str]:
    return sorted({a for statement in document["Statement"] for a in statement["Action"]})


def refused_calls(admin: SandboxAdmin, since: int) -> list[tuple[str, str, int]]:
    return [
        (r["account"], r["action"], r["status"])
        for r in admin.requests()[since:]
        if r["status"] in (401, 403)
    ]


def test_the_printed_policies_name_the_operators_own_reads_and_each_steps_resources(
    admin: SandboxAdmin, spec_path: Path
) -> None:
    policies = printed(spec_path)
    registry, app = UIDS["registry"], UIDS["app"]

    assert set(policies) == {"app", "registry"}
    by_resource = {
        (account, s["Resource"] if isinstance(s["Resource"], str) else tuple(s["Resource"])): s
        for account, document in policies.items()
        for s in document["Statement"]
    }
    role = f"acs:ram:*:{registry}:role/sae-pull-shop-web"
    assert "ram:CreateRole" in by_resource[("registry", role)]["Action"]
    assert by_resource[("app", f"acs:ram:*:{app}:user/deployer-a")]["Action"] == [
        "ram:ListGroupsForUser",
        "ram:ListPoliciesForUser",
    ]
    assert "sae:CreateApplication" in by_resource[("app", "*")]["Action"]
    assert "ram:CreateRole" not in actions(printed(spec_path, "--plan-only")["registry"])
    assert "ram:DeleteRole" in actions(printed(spec_path, "--teardown")["registry"])


def test_exactly_the_printed_policies_plan_deploy_and_tear_down(
    admin: SandboxAdmin, spec_path: Path, process: SandboxProcess
) -> None:
    sdk = SdkFactory(process.url)
    policies = {
        option: printed(spec_path, *option.split()) for option in ("--plan-only", "", "--teardown")
    }
    spec = load_spec(spec_path)

    for account in USERS:
        grant(sdk, account, policies["--plan-only"][account])
    since = len(admin.requests())
    run = deploy(spec, dry_run=True)
    assert run.state.is_completed(), run.state.result(raise_on_failure=False)
    plan = run.state.result().plan
    assert [(r.account, r.action) for r in plan.rows if r.step == "permissions"] == [
        ("A", WARNING),
        ("B", WARNING),
    ]  # a plan-only identity plans, and is told what a deploy would lack
    assert refused_calls(admin, since) == []

    for account in USERS:
        grant(sdk, account, policies[""][account])
    since = len(admin.requests())
    run = deploy(spec)
    assert run.state.is_completed(), run.state.result(raise_on_failure=False)
    assert run.state.result().outcome == "deployed"
    assert refused_calls(admin, since) == []

    for account in USERS:
        grant(sdk, account, policies["--teardown"][account])
    since = len(admin.requests())
    removed = tear_down(spec).result.removed
    assert {c.resource_type for c in removed} >= {"sae.application", "ram.role", "ram.policy"}
    assert refused_calls(admin, since) == []


def test_with_any_one_action_missing_the_deploy_stops_before_any_write(
    admin: SandboxAdmin, spec_path: Path, process: SandboxProcess
) -> None:
    sdk = SdkFactory(process.url)
    policies = printed(spec_path)
    spec = load_spec(spec_path)
    for account in USERS:
        grant(sdk, account, policies[account])

    for account in USERS:
        for action in actions(policies[account]):
            grant(sdk, account, without(policies[account], action))
            since = len(admin.requests())
            run = deploy(spec)
            error = run.state.result(raise_on_failure=False)
            assert isinstance(error, DeployError), (account, action, error)
            assert action in error.message, (account, action, error.message)
            assert [w for w in admin.requests()[since:] if w["write"]] == [], (account, action)
            grant(sdk, account, policies[account])
