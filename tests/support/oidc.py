"""An OIDC world for tests: an identity provider (its signing key here, its public key in the
world file), roles trusting it and a key, tokens, and a sandbox serving it over HTTP and HTTPS.

Fixtures (a pytest plugin of tests/conftest.py): `oidc_sandbox_process` (one per session, with
its HTTPS listener and test CA), `oidc_admin` (reset per test), `oidc_sdk`, and `trust_test_ca`:
what the credentials library needs to trust the sandbox (the test CA as `SSL_CERT_FILE`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, SdkFactory
from tests.support.worlds import demo_world_data, write_world

ISSUER = "https://oidc-ack.cn-hangzhou.aliyuncs.com/c0ffee"
AUDIENCE = "sts.aliyuncs.com"
PROVIDER_ARN = f"acs:ram::{UIDS['registry']}:oidc-provider/ack-rrsa"
OIDC_ROLE_ARN = f"acs:ram::{UIDS['registry']}:role/rrsa-deployer"
KEY_ROLE_ARN = f"acs:ram::{UIDS['registry']}:role/key-deployer"
SUBJECT = "system:serviceaccount:deploy:crossdeploy"
ISSUER_KEY = RSAKey.generate_key(2048, parameters={"kid": "issuer-1"})


def _trust(principal: dict[str, str], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": principal,
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "1", "Statement": [statement]})


def oidc_world(directory: Path) -> Path:
    data = demo_world_data()
    data["ram"]["registry"] = {
        "oidc_providers": [
            {
                "name": "ack-rrsa",
                "issuer_url": ISSUER,
                "client_ids": [AUDIENCE],
                "jwks": {"keys": [ISSUER_KEY.as_dict(private=False)]},
            }
        ],
        "roles": [
            {
                "name": "rrsa-deployer",
                "trust_policy": _trust(
                    {"Federated": PROVIDER_ARN},
                    {
                        "StringEquals": {
                            "oidc:iss": ISSUER,
                            "oidc:aud": AUDIENCE,
                            "oidc:sub": SUBJECT,
                        }
                    },
                ),
                "attached": ["AliyunRAMReadOnlyAccess"],
            },
            {
                "name": "key-deployer",
                "trust_policy": _trust({"RAM": f"acs:ram::{UIDS['app']}:root"}),
                "attached": ["AliyunRAMReadOnlyAccess"],
            },
        ],
        "policies": [],
    }
    return write_world(data, directory)


def oidc_token(
    *,
    key: Any = ISSUER_KEY,
    alg: str = "RS256",
    lifetime: float = 3600,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "iat": now,
        "exp": int(now + lifetime),
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": "issuer-1"}, payload, key)


@pytest.fixture(scope="session")
def oidc_sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    directory = tmp_path_factory.mktemp("oidc-world")
    with SandboxProcess(world=oidc_world(directory), tls_ca_out=directory / "ca.pem") as process:
        yield process


@pytest.fixture
def oidc_admin(oidc_sandbox_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(oidc_sandbox_process.url)
    admin.reset()
    yield admin
    admin.close()


@pytest.fixture
def oidc_sdk(oidc_admin: SandboxAdmin, oidc_sandbox_process: SandboxProcess) -> SdkFactory:
    return SdkFactory(oidc_sandbox_process.endpoint)


@pytest.fixture
def trust_test_ca(oidc_sandbox_process: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test needs for the credentials library's HTTPS: the test CA as OpenSSL's default
    trust file (read when the library builds its TLS context)."""
    assert oidc_sandbox_process.tls_ca_out is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(oidc_sandbox_process.tls_ca_out))
