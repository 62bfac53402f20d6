"""The demo deployed with the credential sources operators use instead of long-term keys (issue
17): an OIDC token (ACK's RRSA) and a CLI profile file, a credentials URI, the environment (the
default chain), and a role whose short-lived token the library refreshes while the change order
is followed past its lifetime (the sandbox clock moved, not a long sleep)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_sts20150401 import models as sts_models
from prefect.settings import PREFECT_API_URL
from pydantic import SecretStr

from blocks import AlibabaCloudCredentials
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.credentials_uri import serving
from tests.support.deploy_support import Run, deploy, forget_ledgers, save_blocks, write_spec
from tests.support.oidc import AUDIENCE, ISSUER, ISSUER_KEY, PROVIDER_ARN, SUBJECT, oidc_token
from tests.support.processes import crossdeploy
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data, fresh_admin, trusting, write_world

ACCOUNTS = {"app": "src-app", "registry": "src-registry"}
SPEC = make_spec(accounts=ACCOUNTS)
B_OIDC = f"acs:ram::{UIDS['registry']}:role/b-via-oidc"
B_KEYS = f"acs:ram::{UIDS['registry']}:role/b-admin"
A_SHORT = f"acs:ram::{UIDS['app']}:role/a-short"


def _role(name: str, principal: dict[str, str], condition: dict[str, Any] | None = None) -> Any:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "sts:AssumeRole"}
    statement["Principal"] = principal
    if condition:
        statement["Condition"] = condition
    trust = json.dumps({"Version": "1", "Statement": [statement]})
    return {"name": name, "trust_policy": trust, "attached": ["AdministratorAccess"]}


def _world(directory: Path) -> Path:
    data = demo_world_data(**FAST_TIMING)
    registry = data["ram"].setdefault("registry", {})
    registry["oidc_providers"] = [
        {
            "name": "ack-rrsa",
            "issuer_url": ISSUER,
            "client_ids": [AUDIENCE],
            "jwks": {"keys": [ISSUER_KEY.as_dict(private=False)]},
        }
    ]
    oidc = {"StringEquals": {"oidc:iss": ISSUER, "oidc:aud": AUDIENCE, "oidc:sub": SUBJECT}}
    registry.setdefault("roles", []).extend(
        [
            _role("b-via-oidc", {"Federated": PROVIDER_ARN}, oidc),
            _role("b-admin", {"RAM": f"acs:ram::{UIDS['registry']}:root"}),
        ]
    )
    app = data["ram"].setdefault("app", {})
    app.setdefault("roles", []).append(_role("a-short", {"RAM": f"acs:ram::{UIDS['app']}:root"}))
    return write_world(data, directory)


@pytest.fixture(scope="module")
def process(
    trusted_cas: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    directory = tmp_path_factory.mktemp("sources-world")
    with SandboxProcess(world=_world(directory), tls_ca_out=directory / "ca.pem") as started:
        yield trusting(started, trusted_cas)


@pytest.fixture
def admin(prefect_harness: None, process: SandboxProcess) -> Iterator[SandboxAdmin]:
    forget_ledgers()
    save_blocks(process.url)  # the logins and the plain key blocks the steps name
    yield from fresh_admin(process)


def _keys(process: SandboxProcess, account: str, **fields: Any) -> AlibabaCloudCredentials:
    key_id, secret = KEYS[account]
    return AlibabaCloudCredentials(
        access_key_id=key_id,
        access_key_secret=SecretStr(secret),
        endpoint=process.url,
        endpoints={"sts": process.https_url},
        **fields,
    )


def _save(app: AlibabaCloudCredentials, registry: AlibabaCloudCredentials) -> None:
    app.save(ACCOUNTS["app"], overwrite=True)
    registry.save(ACCOUNTS["registry"], overwrite=True)


def _deployed(run: Run) -> None:
    assert run.result.outcome == "deployed", run.result.message


def test_an_oidc_token_and_a_cli_profile_deploy_the_demo(
    admin: SandboxAdmin, process: SandboxProcess, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc_token())
    key_id, secret = KEYS["app"]
    profiles = [{"name": "ops", "mode": "AK", "access_key_id": key_id, "access_key_secret": secret}]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"current": "ops", "profiles": profiles}))
    app = AlibabaCloudCredentials(
        source="cli_profile", profile_file=str(config), endpoint=process.url
    )
    registry = AlibabaCloudCredentials(
        source="oidc_role_arn",
        role_arn=B_OIDC,
        oidc_provider_arn=PROVIDER_ARN,
        oidc_token_file=str(token),
        endpoint=process.url,
        endpoints={"sts": process.https_url},
    )
    _save(app, registry)
    _deployed(deploy(SPEC))
    assert any(r["action"] == "AssumeRoleWithOIDC" for r in admin.requests())


def test_a_credentials_uri_deploys_the_demo(admin: SandboxAdmin, process: SandboxProcess) -> None:
    request = sts_models.AssumeRoleRequest(role_arn=B_KEYS, role_session_name="uri")
    creds = SdkFactory(process.endpoint).sts("registry").assume_role(request).body.credentials
    with serving(creds) as uri:
        registry = AlibabaCloudCredentials(
            source="credentials_uri", credentials_uri=uri, endpoint=process.url
        )
        _save(_keys(process, "app"), registry)
        _deployed(deploy(SPEC))


def test_the_environment_deploys_the_demo_through_the_default_chain(
    admin: SandboxAdmin, process: SandboxProcess, tmp_path: Path
) -> None:
    """`crossdeploy deploy` in a process whose environment holds account A's keys (the library
    reads its variables when it is imported)."""
    _save(
        AlibabaCloudCredentials(source="default", endpoint=process.url), _keys(process, "registry")
    )
    key_id, secret = KEYS["app"]
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    spec = write_spec(tmp_path / "spec.yaml", SPEC)
    done = subprocess.run(
        crossdeploy("deploy", str(spec)),
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RUNNING" in done.stdout


def test_a_follow_outlives_its_token_which_the_library_refreshes(
    admin: SandboxAdmin, process: SandboxProcess
) -> None:
    """Account A's block assumes a role for 900 s (the shortest STS gives); the change order
    takes 600 s of the sandbox's time, and as the follow first reads it the sandbox clock jumps
    1000 s on (a fault rule, at that exact call: a jump from another thread could land while a
    request signed with a fresh token was on its way). The order has finished, the token the
    follow held has expired; the library assumes the role again for the next call, and the app
    lands."""
    app = _keys(process, "app", role_arn=A_SHORT, role_session_seconds=900)
    _save(app, _keys(process, "registry"))
    admin.set_timing(change_order_seconds=600)
    jump = {"product": "sae", "action": "DescribeChangeOrder", "times": 1}
    admin.set_faults({**jump, "advance_clock_seconds": 1000})
    _deployed(deploy(SPEC))
    assert admin.faults()[0]["remaining"] == 0
    calls = [(r["action"], r["account"]) for r in admin.requests() if r["account"] == "app"]
    jumped = calls.index(("DescribeChangeOrder", "app"))
    assert calls[jumped + 1][0] == "AssumeRole"  # a new token, taken after the old one expired
    assert len(calls) > jumped + 2  # and used: the deploy went on past the follow
