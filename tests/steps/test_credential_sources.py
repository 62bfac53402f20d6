"""Every credential source of the block (blocks/credentials.py), through the official
`alibabacloud-credentials` library, against the sandbox: the STS sources over its HTTPS listener
(trusting the test CA), the others as an operator writes them (a CLI profile file, a credentials
URI, environment variables). Each block's identity is asked of STS (GetCallerIdentity)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_sts20150401 import models as sts_models
from pydantic import SecretStr, ValidationError

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from sandbox.testing import SandboxProcess
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.credentials_uri import serving
from tests.support.oidc import KEY_ROLE_ARN, OIDC_ROLE_ARN, PROVIDER_ARN, oidc_token


def identity(block: AlibabaCloudCredentials) -> Any:
    return block.get_client("sts").get_caller_identity().body


def keyed(process: SandboxProcess, account: str, **fields: Any) -> AlibabaCloudCredentials:
    """A block of an account's keys, STS at the sandbox's HTTPS listener."""
    key_id, secret = KEYS[account]
    return AlibabaCloudCredentials(
        access_key_id=key_id,
        access_key_secret=SecretStr(secret),
        endpoint=process.url,
        endpoints={"sts": process.https_url},
        **fields,
    )


def test_ram_role_arn_assumes_the_role_before_use(
    trust_test_ca: None, oidc_admin: Any, oidc_sandbox_process: SandboxProcess
) -> None:
    via = keyed(oidc_sandbox_process, "app", role_arn=KEY_ROLE_ARN, role_session_name="tests")
    assert via.credential_source == "ram_role_arn"  # inferred, as blocks saved before `source`
    found = identity(via)
    assert found.account_id == UIDS["registry"]
    assert found.arn.endswith("role/key-deployer/tests")


def test_oidc_role_arn_exchanges_the_token_file_for_the_role(
    trust_test_ca: None,
    oidc_admin: Any,
    oidc_sandbox_process: SandboxProcess,
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc_token())
    block = AlibabaCloudCredentials(
        source="oidc_role_arn",
        role_arn=OIDC_ROLE_ARN,
        oidc_provider_arn=PROVIDER_ARN,
        oidc_token_file=str(token),
        role_session_name="rrsa",
        endpoint=oidc_sandbox_process.url,
        endpoints={"sts": oidc_sandbox_process.https_url},
    )
    found = identity(block)
    assert (found.account_id, found.identity_type) == (UIDS["registry"], "AssumedRoleUser")
    assert found.arn.endswith("role/rrsa-deployer/rrsa")


def test_cli_profile_reads_the_aliyun_config_file(
    oidc_admin: Any, oidc_sandbox_process: SandboxProcess, tmp_path: Path
) -> None:
    key_id, secret = KEYS["registry"]
    config = tmp_path / "config.json"
    profile = {"name": "ops", "mode": "AK", "access_key_id": key_id, "access_key_secret": secret}
    config.write_text(json.dumps({"current": "default", "profiles": [profile]}))
    block = AlibabaCloudCredentials(
        source="cli_profile",
        profile_name="ops",
        profile_file=str(config),
        endpoint=oidc_sandbox_process.url,
    )
    assert identity(block).account_id == UIDS["registry"]


@pytest.fixture
def credentials_uri(oidc_admin: Any, oidc_sdk: SdkFactory) -> Iterator[str]:
    """A local URI serving a role's temporary keys, assumed from the sandbox's STS."""
    request = sts_models.AssumeRoleRequest(role_arn=KEY_ROLE_ARN, role_session_name="uri")
    with serving(oidc_sdk.sts("app").assume_role(request).body.credentials) as uri:
        yield uri


def test_credentials_uri_takes_the_keys_the_uri_serves(
    credentials_uri: str, oidc_sandbox_process: SandboxProcess
) -> None:
    block = AlibabaCloudCredentials(
        source="credentials_uri", credentials_uri=credentials_uri, endpoint=oidc_sandbox_process.url
    )
    found = identity(block)
    assert found.account_id == UIDS["registry"] and found.arn.endswith("role/key-deployer/uri")


CHILD = """
import sys
from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
block = AlibabaCloudCredentials(source="default", endpoint=sys.argv[1])
print(block.get_client("sts").get_caller_identity().body.account_id)
"""


def test_the_default_chain_reads_the_environment_first(
    oidc_admin: Any, oidc_sandbox_process: SandboxProcess
) -> None:
    """The library reads its variables when it is imported, so a child process gets them."""
    key_id, secret = KEYS["app"]
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, oidc_sandbox_process.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == UIDS["app"]


def test_a_source_names_the_fields_it_lacks() -> None:
    with pytest.raises(ValidationError, match="source oidc_role_arn needs role_arn"):
        AlibabaCloudCredentials(source="oidc_role_arn")
    with pytest.raises(ValidationError, match="source access_key needs access_key_secret"):
        AlibabaCloudCredentials(source="access_key", access_key_id="LTAI")


def test_an_sts_source_refuses_plain_http_for_sts(oidc_sandbox_process: SandboxProcess) -> None:
    key_id, secret = KEYS["app"]
    block = AlibabaCloudCredentials(
        access_key_id=key_id,
        access_key_secret=SecretStr(secret),
        role_arn=KEY_ROLE_ARN,
        endpoint=oidc_sandbox_process.url,
    )
    with pytest.raises(ValueError, match="reaches STS over HTTPS only"):
        block.get_client("sts")


def test_a_role_that_cannot_be_assumed_is_named_by_sts_code(
    trust_test_ca: None, oidc_admin: Any, oidc_sandbox_process: SandboxProcess
) -> None:
    """The library keeps STS's refusal inside its exception's text; `call` raises it as a
    CloudError with STS's code, once (a refusal is not retried)."""
    missing = KEY_ROLE_ARN.replace("key-deployer", "nobody")
    block = keyed(oidc_sandbox_process, "app", role_arn=missing)
    with pytest.raises(CloudError) as caught:
        call("sts:GetCallerIdentity", block.get_client("sts").get_caller_identity)
    assert (caught.value.code, caught.value.status) == ("EntityNotExist.Role", 404)
    assert caught.value.unreachable is None
    assumed = [r for r in oidc_admin.requests() if r["action"] == "AssumeRole"]
    assert len(assumed) == 1
