"""STS AssumeRoleWithOIDC, DurationSeconds and token expiry, through the official STS SDK and
through `alibabacloud-credentials`' `oidc_role_arn` and `ram_role_arn` providers over HTTPS.

The sandbox runs with its HTTPS listener (tests/support/oidc.py); the providers trust its test CA
through `SSL_CERT_FILE` (verification stays on) and reach it by `sts_endpoint`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException
from joserfc.jwk import OctKey, RSAKey

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.oidc import (
    ISSUER,
    KEY_ROLE_ARN,
    OIDC_ROLE_ARN,
    PROVIDER_ARN,
    SUBJECT,
    oidc_token,
)


def assume_with_oidc(sdk: SdkFactory, token: str, **kw: Any) -> Any:
    request = sts_models.AssumeRoleWithOIDCRequest(
        oidcprovider_arn=PROVIDER_ARN,
        role_arn=OIDC_ROLE_ARN,
        oidctoken=token,
        role_session_name="rrsa",
        **kw,
    )
    return sdk.sts("app").assume_role_with_oidc(request).body


def refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value.status_code, caught.value.code


def seconds_left(expiration: str) -> float:
    return (
        time.mktime(time.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - time.time()
    )


def test_the_sts_sdk_assumes_a_role_with_an_oidc_token(oidc_sdk: SdkFactory) -> None:
    body = assume_with_oidc(oidc_sdk, oidc_token(), duration_seconds=1800)
    creds = body.credentials
    assert 1700 < seconds_left(creds.expiration) <= 1801
    assert body.oidctoken_info.issuer == ISSUER
    assert body.oidctoken_info.subject == SUBJECT
    assert body.assumed_role_user.arn == f"{OIDC_ROLE_ARN}/rrsa"
    who = oidc_sdk.sts(
        key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token
    ).get_caller_identity()
    assert who.body.identity_type == "AssumedRoleUser"
    assert who.body.account_id == UIDS["registry"]


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (
            lambda: oidc_token(iss="https://elsewhere.example/c1"),
            "AuthenticationFail.OIDCToken.IssuerNotMatch",
        ),
        (lambda: oidc_token(aud="another-client"), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        (
            lambda: oidc_token(key=RSAKey.generate_key(2048)),
            "AuthenticationFail.OIDCToken.InvalidSignature",
        ),
        (lambda: oidc_token(lifetime=-60), "AuthenticationFail.OIDCToken.Expired"),
        (
            lambda: oidc_token(key=OctKey.generate_key(256), alg="HS256"),
            "AuthenticationFail.OIDCToken.Invalid",
        ),
        (lambda: "not.a-token", "AuthenticationFail.OIDCToken.Invalid"),
        (
            lambda: oidc_token(sub="system:serviceaccount:other:sa"),
            "AuthenticationFail.NoPermission",
        ),
    ],
    ids=["issuer", "audience", "signature", "expired", "hs256", "garbage", "subject-not-trusted"],
)
def test_a_bad_oidc_token_is_refused_with_the_documented_code(
    oidc_sdk: SdkFactory, token: Any, code: str
) -> None:
    assert refusal(lambda: assume_with_oidc(oidc_sdk, token())) == (401, code)


def test_an_unknown_provider_is_refused(oidc_sdk: SdkFactory) -> None:
    request = sts_models.AssumeRoleWithOIDCRequest(
        oidcprovider_arn=f"acs:ram::{UIDS['registry']}:oidc-provider/nobody",
        role_arn=OIDC_ROLE_ARN,
        oidctoken=oidc_token(),
        role_session_name="rrsa",
    )
    call = lambda: oidc_sdk.sts("app").assume_role_with_oidc(request)  # noqa: E731
    assert refusal(call) == (401, "AuthenticationFail.NoPermission")


@pytest.mark.parametrize("duration", [899, 3601, 43200])
def test_duration_seconds_outside_the_roles_range_is_refused(
    oidc_sdk: SdkFactory, duration: int
) -> None:
    expected = (400, "InvalidParameter.DurationSeconds")
    assert (
        refusal(lambda: assume_with_oidc(oidc_sdk, oidc_token(), duration_seconds=duration))
        == expected
    )
    request = sts_models.AssumeRoleRequest(
        role_arn=KEY_ROLE_ARN, role_session_name="keys", duration_seconds=duration
    )
    assert refusal(lambda: oidc_sdk.sts("app").assume_role(request)) == expected


def test_a_role_allowing_longer_sessions_is_assumed_up_to_its_maximum(
    oidc_sdk: SdkFactory,
) -> None:
    oidc_sdk.ram("registry").update_role(
        ram_models.UpdateRoleRequest(role_name="key-deployer", new_max_session_duration=7200)
    )
    request = sts_models.AssumeRoleRequest(
        role_arn=KEY_ROLE_ARN, role_session_name="keys", duration_seconds=7200
    )
    creds = oidc_sdk.sts("app").assume_role(request).body.credentials
    assert 7100 < seconds_left(creds.expiration) <= 7201
    request.duration_seconds = 7201
    expected = (400, "InvalidParameter.DurationSeconds")
    assert refusal(lambda: oidc_sdk.sts("app").assume_role(request)) == expected


def test_a_token_used_after_its_expiry_is_refused(
    oidc_sdk: SdkFactory, oidc_admin: SandboxAdmin
) -> None:
    request = sts_models.AssumeRoleRequest(
        role_arn=KEY_ROLE_ARN, role_session_name="keys", duration_seconds=900
    )
    creds = oidc_sdk.sts("app").assume_role(request).body.credentials
    client = oidc_sdk.sts(
        key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token
    )
    assert client.get_caller_identity().body.identity_type == "AssumedRoleUser"
    oidc_admin.advance_clock(899)
    assert client.get_caller_identity().body.identity_type == "AssumedRoleUser"
    oidc_admin.advance_clock(2)
    assert refusal(client.get_caller_identity) == (400, "InvalidSecurityToken.Expired")


def test_the_clock_ages_oidc_tokens_too(oidc_sdk: SdkFactory, oidc_admin: SandboxAdmin) -> None:
    token = oidc_token(lifetime=600)
    oidc_admin.advance_clock(601)
    expected = (401, "AuthenticationFail.OIDCToken.Expired")
    assert refusal(lambda: assume_with_oidc(oidc_sdk, token)) == expected


def test_the_oidc_role_arn_provider_gets_credentials_over_https(
    oidc_sandbox_process: SandboxProcess, oidc_sdk: SdkFactory, trust_test_ca: None, tmp_path: Path
) -> None:
    from alibabacloud_credentials.provider import OIDCRoleArnCredentialsProvider

    token_file = tmp_path / "token"
    token_file.write_text(oidc_token())
    provider = OIDCRoleArnCredentialsProvider(
        role_arn=OIDC_ROLE_ARN,
        oidc_provider_arn=PROVIDER_ARN,
        oidc_token_file_path=str(token_file),
        role_session_name="rrsa",
        duration_seconds=900,
        sts_endpoint=oidc_sandbox_process.https_endpoint,
    )
    creds = provider.get_credentials()
    assert creds.get_access_key_id().startswith("STS.")
    assert creds.get_provider_name() == "oidc_role_arn"
    who = oidc_sdk.sts(
        key=(creds.get_access_key_id(), creds.get_access_key_secret()),
        token=creds.get_security_token(),
    ).get_caller_identity()
    assert who.body.arn == f"{OIDC_ROLE_ARN}/rrsa"


def test_the_ram_role_arn_provider_gets_credentials_over_https(
    oidc_sandbox_process: SandboxProcess, oidc_sdk: SdkFactory, trust_test_ca: None
) -> None:
    from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

    key_id, secret = KEYS["app"]
    provider = RamRoleArnCredentialsProvider(
        access_key_id=key_id,
        access_key_secret=secret,
        role_arn=KEY_ROLE_ARN,
        role_session_name="keys",
        duration_seconds=900,
        sts_endpoint=oidc_sandbox_process.https_endpoint,
    )
    creds = provider.get_credentials()
    assert creds.get_provider_name() == "ram_role_arn/static_ak"
    who = oidc_sdk.sts(
        key=(creds.get_access_key_id(), creds.get_access_key_secret()),
        token=creds.get_security_token(),
    ).get_caller_identity()
    assert who.body.arn == f"{KEY_ROLE_ARN}/keys"


def test_https_is_verified_so_the_test_ca_must_be_trusted(
    oidc_sandbox_process: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `SSL_CERT_FILE` the library refuses the sandbox's certificate (a new address, so
    the library builds a new TLS context rather than reusing a trusting one)."""
    from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    key_id, secret = KEYS["app"]
    port = oidc_sandbox_process.https_endpoint.rsplit(":", 1)[1]
    provider = RamRoleArnCredentialsProvider(
        access_key_id=key_id,
        access_key_secret=secret,
        role_arn=KEY_ROLE_ARN,
        sts_endpoint=f"localhost:{port}",
    )
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        provider.get_credentials()


def test_the_clock_only_moves_forward_and_reset_sets_it_back(
    oidc_admin: SandboxAdmin, oidc_sandbox_process: SandboxProcess
) -> None:
    assert oidc_admin.advance_clock(120) == 120
    assert oidc_admin.advance_clock(30) == 150
    refused = httpx.post(
        f"{oidc_sandbox_process.url}/_sandbox/clock", json={"advance_seconds": -1}, timeout=10
    )
    assert refused.status_code == 400
    oidc_admin.reset()
    assert oidc_admin.advance_clock(0) == 0
