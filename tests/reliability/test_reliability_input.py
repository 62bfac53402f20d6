"""Issue 6, bad input: a catalogue of invalid specs and inputs, each refused with its field path.

Every case goes through an entry point a user has: `crossdeploy plan SPEC.yaml` (Typer's runner,
in this process) or the `cross_account_deploy` flow under the session's Prefect test server,
against a freshly reset fast sandbox. Each must end non-zero with a message naming the field
path, no traceback, and not one write call in the sandbox's request log; problems the spec alone
shows are refused before any API call at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from cli.main import app
from flows.cross_account_deploy import cross_account_deploy
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, sandbox_credentials
from tests.support.deploy_support import flow_runs_since, forget_ledgers, save_blocks
from tests.support.specs import DEMO_SPEC, make_spec

HOST = "demo-registry.cn-hangzhou.cr.aliyuncs.com"
Edit = Callable[[dict[str, Any]], object]


@dataclass(frozen=True)
class Case:
    """One invalid input: how it differs from the demo spec, and the field its error names."""

    field: str
    edit: Edit | str
    """A change to a copy of DEMO_SPEC, or the spec file's whole text."""
    offline: bool = True
    """Refused from the spec alone: no API call at all, not only no write."""
    also: tuple[str, ...] = ()
    """Further fields the same refusal names (every problem is reported at once)."""


def _set(section: str, **values: Any) -> Edit:
    return lambda spec: spec.setdefault(section, {}).update(values)


def _drop(section: str, key: str) -> Edit:
    return lambda spec: spec[section].pop(key)


def _image(url: str, instance_id: str | None = "cri-demo") -> Edit:
    return _set("image", url=url, instance_id=instance_id)


CASES: dict[str, Case] = {
    # image addresses
    "image-no-tag": Case("image.url", _image(f"{HOST}/shop/web")),
    "image-uppercase-repo": Case("image.url", _image(f"{HOST}/Shop/Web:1.1")),
    "image-uppercase-host": Case(
        "image.url", _image("Demo-Registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1")
    ),
    "image-not-acr-host": Case("image.url", _image("docker.io/shop/web:1.1")),
    "image-digest-garbage": Case("image.url", _image(f"{HOST}/shop/web@sha256:zz!")),
    "image-bad-tag": Case("image.url", _image(f"{HOST}/shop/web:-bad tag")),
    "image-no-namespace": Case("image.url", _image(f"{HOST}/web:1.1")),
    "image-empty": Case("image.url", _image("")),
    "image-personal-vpc-domain-other-region": Case(
        "image.url", _image("registry-vpc.cn-shanghai.aliyuncs.com/shop-personal/web:1.0", None)
    ),
    # regions
    "region-malformed": Case("app.region", _set("app", region="Hangzhou", namespace=None)),
    "region-unknown": Case("app.region", _set("app", region="xx-nowhere-9", namespace=None)),
    # ACR instance ids
    "instance-id-malformed": Case("image.instance_id", _set("image", instance_id="demo")),
    "instance-id-with-personal-address": Case(
        "image.instance_id", _image("registry.cn-hangzhou.aliyuncs.com/shop-personal/web:1.0")
    ),
    "instance-id-missing-in-account-b": Case(
        "image.instance_id", _set("image", instance_id="cri-nope"), offline=False
    ),
    "instance-id-not-the-images": Case(
        "image.instance_id",
        _image("other-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"),
        offline=False,
    ),
    # app names and namespaces
    "app-name-uppercase-underscore": Case("app.name", _set("app", name="Shop_Web")),
    "app-name-too-long": Case("app.name", _set("app", name="a" * 37)),
    "app-name-trailing-hyphen": Case("app.name", _set("app", name="shop-")),
    "namespace-other-region": Case("app.namespace", _set("app", namespace="cn-shanghai:demo")),
    "namespace-bad-name": Case("app.namespace", _set("app", namespace="cn-hangzhou:Demo_1")),
    "namespace-unknown": Case(
        "app.namespace", _set("app", namespace="cn-hangzhou:nope"), offline=False
    ),
    # Cpu / Memory / replicas / envs
    "cpu-memory-not-a-pair": Case("app.memory", _set("app", cpu=500, memory=8192)),
    "memory-not-offered": Case("app.memory", _set("app", memory=3000)),
    "cpu-not-offered": Case("app.memory", _set("app", cpu=3000, memory=4096)),
    "replicas-zero": Case("app.replicas", _set("app", replicas=0)),
    "replicas-too-many": Case("app.replicas", _set("app", replicas=51)),
    "env-name-invalid": Case("app.envs", _set("app", envs={"1BAD": "x"})),
    "env-value-not-text": Case("app.envs.LOG", _set("app", envs={"LOG": {"level": 1}})),
    # accounts and blocks
    "block-name-invalid": Case("accounts.app", _set("accounts", app="Sandbox_App")),
    "block-app-unknown": Case("accounts.app", _set("accounts", app="no-such-block"), offline=False),
    "blocks-both-unknown": Case(
        "accounts.app",
        _set("accounts", app="no-such-block", registry="no-such-block-either"),
        offline=False,
        also=("accounts.registry",),
    ),
    "block-registry-unknown": Case(
        "accounts.registry", _set("accounts", registry="no-such-block"), offline=False
    ),
    "block-registry-role-arn-malformed": Case(
        "accounts.registry", _set("accounts", registry="reg-bad-arn"), offline=False
    ),
    "block-registry-role-in-wrong-account": Case(
        "accounts.registry", _set("accounts", registry="reg-wrong-account"), offline=False
    ),
    "blocks-both-refused": Case(
        "accounts.app",
        _set("accounts", app="app-bad-secret", registry="reg-wrong-account"),
        offline=False,
        also=("accounts.registry",),
    ),
    "blocks-both-one-account": Case(
        "accounts.registry", _set("accounts", registry="app-as-registry"), offline=False
    ),
    # access
    "secret-without-registry-login": Case("access.registry_login", _set("access", method="secret")),
    "registry-login-with-ram-role": Case(
        "access.registry_login", _set("access", registry_login="acr-login")
    ),
    "registry-login-block-unknown": Case(
        "access.registry_login",
        _set("access", method="secret", registry_login="no-such-login"),
        offline=False,
    ),
    "access-method-unknown": Case("access.method", _set("access", method="token")),
    "role-name-invalid": Case("access.role_name", _set("access", role_name="bad/role")),
    "role-name-too-long": Case("access.role_name", _set("access", role_name="r" * 65)),
    "policy-name-invalid": Case("access.policy_name", _set("access", policy_name="bad_policy")),
    # network and rollout
    "whitelist-unknown": Case("network.whitelist", _set("network", whitelist="all")),
    "timeout-too-short": Case("rollout.timeout_seconds", _set("rollout", timeout_seconds=30)),
    "timeout-too-long": Case("rollout.timeout_seconds", _set("rollout", timeout_seconds=7201)),
    # shape and types
    "unknown-top-level-field": Case("extras", lambda spec: spec.update(extras={"a": 1})),
    "unknown-app-field": Case("app.memroy", _set("app", memroy=2048)),
    "cpu-wrong-type": Case("app.cpu", _set("app", cpu="lots")),
    "rollback-wrong-type": Case(
        "rollout.rollback_on_failure", _set("rollout", rollback_on_failure="perhaps")
    ),
    "image-section-missing": Case("image", lambda spec: spec.pop("image")),
    "app-name-missing": Case("app.name", _drop("app", "name")),
    "three-problems-at-once": Case(
        "app.name",
        lambda spec: (
            spec["app"].update(name="Shop_Web", memory=3000),
            spec.update(network={"whitelist": "all"}),
        ),
        also=("app.memory", "network.whitelist"),
    ),
    "yaml-not-a-mapping": Case("(spec)", "- shop-web\n- cn-hangzhou\n"),
    "yaml-syntax-error": Case("(file)", "app: {name: shop-web\n"),
    "yaml-empty": Case("(spec)", ""),
}


@pytest.fixture(scope="module")
def blocks(prefect_harness: None, fast_sandbox_process: SandboxProcess) -> None:
    """The demo blocks plus the wrongly configured ones the cases name."""
    url = fast_sandbox_process.url
    save_blocks(url)
    sandbox_credentials(url, "registry", role_arn="arn:aws:iam::1:role/x").save(
        "reg-bad-arn", overwrite=True
    )
    sandbox_credentials(
        url,
        "registry",
        role_arn=f"acs:ram::{UIDS['app']}:role/deployer",
        endpoints={"sts": fast_sandbox_process.https_url},  # the library's STS is HTTPS only
    ).save("reg-wrong-account", overwrite=True)
    sandbox_credentials(url, "app").save("app-as-registry", overwrite=True)
    sandbox_credentials(url, "app", access_key_secret=SecretStr("not-its-secret")).save(
        "app-bad-secret", overwrite=True
    )


@pytest.fixture
def world(blocks: None, fast_admin: SandboxAdmin) -> SandboxAdmin:
    forget_ledgers()
    return fast_admin


def _spec_text(case: Case) -> str:
    if isinstance(case.edit, str):
        return case.edit
    data = copy.deepcopy(DEMO_SPEC)
    case.edit(data)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.reliability("bad input", "an invalid spec or input is refused naming its field")
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_its_field_and_no_write(
    world: SandboxAdmin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    record_property: Callable[[str, Any], None],
) -> None:
    """`crossdeploy plan` exits non-zero naming the field, prints no traceback, logs none, and
    the sandbox saw no write (and no call at all when the spec alone shows the problem)."""
    case = CASES[name]
    path = tmp_path / "spec.yaml"
    path.write_text(_spec_text(case))
    started = datetime.now(UTC)
    result = CliRunner().invoke(app, ["plan", str(path)], env={"COLUMNS": "200"})
    output = " ".join(result.output.split())
    assert result.exit_code != 0, output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert [r.getMessage()[:80] for r in caplog.records if r.exc_info] == []
    patterns = [rf"(^|\s){re.escape(f)}(?!\w|\.\w)" for f in (case.field, *case.also)]
    for pattern in patterns:
        assert re.search(pattern, output), output
    assert world.writes() == []
    if case.offline:
        assert result.exit_code == 2, output
        assert world.requests() == []
        assert flow_runs_since(started) == []
    lines = [line.strip() for line in result.output.splitlines()]
    reason = next((line for line in lines if re.search(patterns[0], line)), output)
    calls = "0 API calls" if case.offline else "0 writes"
    record_property("outcome", f"exit {result.exit_code}; {calls}; {reason[:200]}")


@pytest.mark.reliability("bad input", "an invalid image_tag override of the deploy flow")
def test_invalid_image_tag_override_fails_the_flow_before_any_call(
    world: SandboxAdmin, record_property: Callable[[str, Any], None]
) -> None:
    state = cross_account_deploy(spec=make_spec(), image_tag="bad tag!", return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert "image_tag:" in str(error), str(error)
    assert world.requests() == []
    record_property("outcome", f"flow Failed before any API call; {str(error).splitlines()[-1]}")
