"""Request signatures: the reference vectors, each scheme end to end, and every refusal.

End-to-end cases use the official SDKs unmodified. Tampering happens in a proxy between the SDK
and the sandbox (`tests.support.tampering_proxy`), after the SDK has signed, as an attacker on the
path would do it. Requests that no SDK would send (an old date, an unknown version) are signed here
with `sandbox.signing` and sent raw.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from darabonba.runtime import RuntimeOptions

from sandbox import signing
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, UIDS, SdkFactory
from tests.support.policies import trust
from tests.support.ram_setup import make_role
from tests.support.raw_requests import legacy_roa_headers, signed_headers
from tests.support.tampering_proxy import TamperingProxy, WireRequest

SYSTEM_POLICY = "AliyunRAMReadOnlyAccess"

SCHEMES = ("acs3-rpc", "acs3-form", "acs3-roa", "rpc-v1", "rpc-v1-form", "roa-v1")
"""How a call is signed and shaped: ACS3 or legacy v1; RPC query, RPC form body, or ROA."""
FORM_PROBE = "FormProbe"
"""A form-body parameter GetPolicy does not know: signed, then ignored (logged as such)."""
LEGACY = {"rpc-v1", "rpc-v1-form", "roa-v1"}
ROA = {"acs3-roa", "roa-v1"}


def call(factory: SdkFactory, scheme: str, **config: Any) -> Any:
    """One read call of the app account, signed and shaped as `scheme` says.

    RPC: RAM GetPolicy (query parameters; with `-form`, also a form body through the SDK's
    generic `call_api`: GetPolicy reads its parameters from the query only (api_meta), so the
    body carries one it does not know, which is signed and then ignored).
    ROA: SAE DescribeNamespaceList (`ContainCustom` in the query).
    """
    v2 = scheme in LEGACY
    if scheme in ROA:
        request = sae_models.DescribeNamespaceListRequest(contain_custom=True)
        return factory.sae("app", v2=v2, **config).describe_namespace_list(request)
    ram = factory.ram("app", v2=v2, **config)
    if scheme.endswith("-form"):
        params = Params(
            action="GetPolicy",
            version="2015-05-01",
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        query = {"PolicyName": SYSTEM_POLICY, "PolicyType": "System"}
        request = OpenApiRequest(query=query, body={FORM_PROBE: "signed"})
        return ram.call_api(params, request, RuntimeOptions())
    return ram.get_policy(
        ram_models.GetPolicyRequest(policy_name=SYSTEM_POLICY, policy_type="System")
    )


def call_authenticated(factory: SdkFactory, scheme: str, **config: Any) -> None:
    """`call`, where an unrouted ROA action (404 after authentication) still counts as accepted.

    The sandbox authenticates before it routes, so `InvalidAction.NotFound` proves the signature
    was good even while an SAE action is not emulated yet.
    """
    try:
        call(factory, scheme, **config)
    except ClientException as exc:
        if not (scheme in ROA and exc.code == "InvalidAction.NotFound"):
            raise


@pytest.fixture
def upstream(admin: SandboxAdmin, sandbox_process: SandboxProcess) -> str:
    """URL of the freshly reset shared sandbox."""
    return sandbox_process.url


# -- reference vectors (alibaba-api.md 1.3, 1.4) ---------------------------------------------------

VECTOR_HEADERS = {
    "host": "sae.cn-hangzhou.aliyuncs.com",
    "x-acs-version": "2019-05-06",
    "x-acs-action": "DescribeChangeOrder",
    "user-agent": "UA",
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": "00000000000000000000000000000001",
    "accept": "application/json",
    "x-acs-content-sha256": signing.EMPTY_SHA256,
}


def test_acs3_vector_roa_get() -> None:
    """Query values are RFC 3986 encoded (space as %20, `*` as %2A) and all headers signed."""
    signature = signing.acs3_signature(
        secret="testsecret",
        method="GET",
        path="/pop/v1/sam/changeorder/DescribeChangeOrder",
        query=[("ChangeOrderId", "co-1 x*")],
        headers=VECTOR_HEADERS,
        signed_headers=sorted(VECTOR_HEADERS),
        payload_hash=signing.EMPTY_SHA256,
    )
    assert signature == "f4a9e09e6645137fc5c38eb88ec4580a0f2597af74131807bedbf7254b0901fa"


def test_acs3_vector_roa_post_form_body() -> None:
    """The body is bound through its SHA-256, which is also a signed header."""
    body = b"AcrInstanceId=cri-1"
    payload = signing.sha256_hex(body)
    assert payload == "26384b934f444767ab30a1b207a270998b9d9420d0be36b110b938bddd9267ec"
    headers = {
        **VECTOR_HEADERS,
        "x-acs-action": "CreateApplication",
        "x-acs-signature-nonce": "00000000000000000000000000000002",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-content-sha256": payload,
    }
    signature = signing.acs3_signature(
        secret="testsecret",
        method="POST",
        path="/pop/v1/sam/app/createApplication",
        query=[("AppName", "demo"), ("PackageType", "Image"), ("Replicas", "1")],
        headers=headers,
        signed_headers=sorted(headers),
        payload_hash=payload,
    )
    assert signature == "489bef30741f68a4229e6c2dc854c962fc01c9ea9fe3589beae0344188c46133"


def test_rpc_v1_vector() -> None:
    """Every parameter but Signature is signed, double-encoded, with `secret&` as the key."""
    params = [
        ("Action", "GetCallerIdentity"),
        ("Format", "json"),
        ("Version", "2015-04-01"),
        ("Timestamp", "2024-01-01T00:00:00Z"),
        ("SignatureNonce", "nonce-1"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", "testid"),
    ]
    expected = "9vqd7ipVLFRNDx47D0zqAC6dP+Y="
    for received in (params, [*params, ("Signature", expected)]):
        assert signing.rpc_v1_signature(secret="testsecret", method="POST", params=received) == (
            expected
        )


def test_roa_v1_vector() -> None:
    """Only accept, date and `x-acs-*` headers are signed; host and user-agent are not."""
    headers = {
        "accept": "application/json",
        "date": "Mon, 01 Jan 2024 00:00:00 GMT",
        "x-acs-action": "DescribeChangeOrder",
        "x-acs-signature-method": "HMAC-SHA1",
        "x-acs-signature-nonce": "nonce-2",
        "x-acs-signature-version": "1.0",
        "x-acs-version": "2019-05-06",
        "host": "anything",
        "user-agent": "anything",
    }
    signature = signing.roa_v1_signature(
        secret="testsecret",
        method="GET",
        path="/pop/v1/sam/changeorder/DescribeChangeOrder",
        query=[("ChangeOrderId", "co-1")],
        headers=headers,
    )
    assert signature == "wFSnCQg3jxBBbGcvWdq5gcQI+sA="


# -- every scheme end to end -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.contract_breaches
def test_sdk_requests_of_each_scheme_are_accepted(
    upstream: str, admin: SandboxAdmin, scheme: str
) -> None:
    """The SDK really speaks the scheme we think (seen on the wire), and the sandbox accepts it."""
    with TamperingProxy(upstream) as proxy:
        call_authenticated(SdkFactory(proxy.endpoint), scheme)
    [sent] = proxy.seen
    authorization = sent.headers.get("authorization", "")
    key_id = KEYS["app"][0]
    if scheme.startswith("acs3"):
        assert authorization.startswith(f"{signing.ACS3} Credential={key_id},SignedHeaders=")
    elif scheme == "roa-v1":
        assert authorization.startswith(f"acs {key_id}:")
    else:
        query = dict(parse_qsl(sent.query_string))
        assert not authorization
        assert query["AccessKeyId"] == key_id
        assert query["SignatureMethod"] == "HMAC-SHA1"
        assert query["Signature"]
    if scheme.endswith("-form"):
        assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
        assert f"{FORM_PROBE}=signed".encode() in sent.body
    [logged] = admin.requests()
    assert logged["ignored"] == ([FORM_PROBE] if scheme.endswith("-form") else [])
    assert logged["account"] == "app"
    assert logged["status"] == 200 or (scheme in ROA and logged["code"] == "InvalidAction.NotFound")


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    ("key", "code", "status"),
    [
        (("LTAIunknown000000", "whatever"), "InvalidAccessKeyId.NotFound", 404),
        ((KEYS["app"][0], "not-the-secret"), "SignatureDoesNotMatch", 400),
    ],
    ids=["unknown-key", "wrong-secret"],
)
def test_bad_credentials_are_refused(
    sdk: SdkFactory, scheme: str, key: tuple[str, str], code: str, status: int
) -> None:
    """An unknown key and a wrong secret get the gateway's codes, whatever the scheme."""
    with pytest.raises(ClientException) as refused:
        call(sdk, scheme, key=key)
    assert (refused.value.code, refused.value.status_code) == (code, status)


# -- tampering after signing -----------------------------------------------------------------------


def _flip_last_body_byte(request: WireRequest) -> None:
    assert request.body, "the case needs a request with a body"
    request.body = request.body[:-1] + bytes([request.body[-1] ^ 0x01])


def _add_form_body(request: WireRequest) -> None:
    assert not request.body
    request.body = b"PolicyType=Custom"
    request.headers["content-type"] = "application/x-www-form-urlencoded"


def _append_body(request: WireRequest) -> None:
    assert not request.body
    request.body = b"PolicyType=Custom"


def _body_with_matching_hash(request: WireRequest) -> None:
    assert not request.body
    request.body = b"PolicyType=Custom"
    request.headers["x-acs-content-sha256"] = hashlib.sha256(request.body).hexdigest()


def _set_header(name: str, value: str) -> Callable[[WireRequest], None]:
    def tamper(request: WireRequest) -> None:
        assert name in request.headers
        request.headers[name] = value

    return tamper


def _add_header(name: str, value: str) -> Callable[[WireRequest], None]:
    def tamper(request: WireRequest) -> None:
        assert name not in request.headers
        request.headers[name] = value

    return tamper


def _drop_header(name: str) -> Callable[[WireRequest], None]:
    def tamper(request: WireRequest) -> None:
        del request.headers[name]

    return tamper


def _set_query(name: str, value: str) -> Callable[[WireRequest], None]:
    def tamper(request: WireRequest) -> None:
        request.set_query(name, value)

    return tamper


def _set_path(path: str) -> Callable[[WireRequest], None]:
    def tamper(request: WireRequest) -> None:
        request.path = path

    return tamper


def _shift_date(request: WireRequest) -> None:
    sent = datetime.strptime(request.headers["date"], "%a, %d %b %Y %H:%M:%S GMT")
    request.headers["date"] = (sent + timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")


MISMATCH = "SignatureDoesNotMatch"
INCOMPLETE = "IncompleteSignature"

TAMPERING = [
    ("acs3-rpc", "query-value", _set_query("PolicyName", "AliyunRAMFullAccess"), MISMATCH),
    ("acs3-rpc", "user-agent", _set_header("user-agent", "evil/1.0"), MISMATCH),
    ("acs3-rpc", "x-acs-action", _set_header("x-acs-action", "ListPolicyVersions"), MISMATCH),
    ("acs3-rpc", "body-added", _append_body, MISMATCH),
    ("acs3-rpc", "form-body-added", _add_form_body, INCOMPLETE),
    ("acs3-rpc", "body-and-hash-added", _body_with_matching_hash, MISMATCH),
    ("acs3-rpc", "unsigned-acs-header", _add_header("x-acs-extra-flag", "1"), INCOMPLETE),
    ("acs3-rpc", "signed-header-dropped", _drop_header("x-acs-signature-nonce"), INCOMPLETE),
    ("acs3-rpc", "authorization-dropped", _drop_header("authorization"), INCOMPLETE),
    ("acs3-form", "body-byte-flipped", _flip_last_body_byte, MISMATCH),
    ("acs3-roa", "query-value", _set_query("ContainCustom", "False"), MISMATCH),
    ("acs3-roa", "path", _set_path("/pop/v1/sam/namespace/describeNamespace"), MISMATCH),
    ("rpc-v1", "query-value", _set_query("PolicyName", "AliyunRAMFullAccess"), MISMATCH),
    ("rpc-v1", "action", _set_query("Action", "ListPolicyVersions"), MISMATCH),
    ("rpc-v1", "form-body-added", _add_form_body, MISMATCH),
    ("rpc-v1", "timestamp", _set_query("Timestamp", "2030-01-01T00:00:00Z"), MISMATCH),
    ("rpc-v1-form", "body-byte-flipped", _flip_last_body_byte, MISMATCH),
    ("roa-v1", "query-value", _set_query("ContainCustom", "False"), MISMATCH),
    ("roa-v1", "path", _set_path("/pop/v1/sam/namespace/describeNamespace"), MISMATCH),
    ("roa-v1", "x-acs-action", _set_header("x-acs-action", "DescribeNamespace"), MISMATCH),
    ("roa-v1", "added-acs-header", _add_header("x-acs-extra-flag", "1"), MISMATCH),
    ("roa-v1", "date", _shift_date, MISMATCH),
]


@pytest.mark.parametrize(
    ("scheme", "tamper", "code"),
    [(scheme, tamper, code) for scheme, _, tamper, code in TAMPERING],
    ids=[f"{scheme}-{what}" for scheme, what, _, _ in TAMPERING],
)
def test_tampered_requests_are_refused(
    upstream: str,
    admin: SandboxAdmin,
    scheme: str,
    tamper: Callable[[WireRequest], None],
    code: str,
) -> None:
    """Any change to a signed part of a request after signing is caught, and nothing runs."""
    with TamperingProxy(upstream, tamper) as proxy, pytest.raises(ClientException) as refused:
        call(SdkFactory(proxy.endpoint), scheme)
    assert (refused.value.code, refused.value.status_code) == (code, 400)
    assert len(proxy.seen) == 1
    [logged] = admin.requests()
    assert logged["account"] is None
    assert logged["code"] == code


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.contract_breaches
def test_replayed_request_is_refused(upstream: str, scheme: str) -> None:
    """The same signed request sent twice: the first is served, the copy meets its used nonce."""
    with TamperingProxy(upstream, sends=2) as proxy, pytest.raises(ClientException) as refused:
        call(SdkFactory(proxy.endpoint), scheme)
    assert refused.value.code == "SignatureNonceUsed"
    [sent] = proxy.seen
    first, second = sent.statuses
    assert first == 200 or (scheme in ROA and first == 404)
    assert second == 400


# -- the legacy SDK's ROA requests carry no nonce --------------------------------------------------

NAMESPACE_LIST = "/pop/v1/sam/namespace/describeNamespaceList"
LEGACY_QUERY = [("ContainCustom", "true"), ("RegionId", "cn-hangzhou")]


def send_legacy_roa(url: str, *, nonce: str | None = None) -> httpx.Response:
    """SAE DescribeNamespaceList signed as aliyun-python-sdk-core signs ROA v1 requests, to the
    region's endpoint (`Host`; the API has no RegionId, so the one the SDK adds is ignored)."""
    headers = legacy_roa_headers(url, NAMESPACE_LIST, LEGACY_QUERY, nonce=nonce)
    headers["host"] = "sae.cn-hangzhou.aliyuncs.com"
    target = f"{url}{NAMESPACE_LIST}?{urlencode(LEGACY_QUERY)}"
    return httpx.get(target, headers=headers, trust_env=False, timeout=30)


@pytest.mark.contract_breaches
def test_legacy_roa_request_without_a_nonce_is_served(upstream: str, admin: SandboxAdmin) -> None:
    """aliyun-python-sdk-core sends no x-acs-signature-nonce with ROA v1; the cloud serves it."""
    first, again = send_legacy_roa(upstream), send_legacy_roa(upstream)
    assert (first.status_code, again.status_code) == (200, 200)
    assert "cn-hangzhou:demo" in {n["NamespaceId"] for n in first.json()["Data"]}
    assert [(r["account"], r["action"], r["code"]) for r in admin.requests()] == [
        ("app", "DescribeNamespaceList", None)
    ] * 2


@pytest.mark.contract_breaches
def test_legacy_roa_nonce_when_sent_is_still_checked_for_reuse(upstream: str) -> None:
    nonce = uuid.uuid4().hex
    assert send_legacy_roa(upstream, nonce=nonce).status_code == 200
    replayed = send_legacy_roa(upstream, nonce=nonce)
    assert (replayed.status_code, replayed.json()["Code"]) == (400, "SignatureNonceUsed")


def test_other_schemes_still_need_a_nonce(upstream: str) -> None:
    """Only legacy ROA may leave the nonce out: RPC v1 without SignatureNonce is refused, and
    ACS3 must sign x-acs-signature-nonce."""
    key_id, secret = KEYS["app"]
    params = [
        ("AccessKeyId", key_id),
        ("Action", "GetCallerIdentity"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("Version", "2015-04-01"),
    ]
    signature = signing.rpc_v1_signature(secret=secret, method="POST", params=params)
    query = urlencode([*params, ("Signature", signature)])
    rpc = httpx.post(f"{upstream}/?{query}", trust_env=False, timeout=30)
    assert (rpc.status_code, rpc.json()["Code"]) == (400, "MissingSignatureNonce")
    headers = signed_headers(upstream)
    del headers["x-acs-signature-nonce"]
    acs3 = httpx.post(f"{upstream}/", headers=headers, trust_env=False, timeout=30)
    assert (acs3.status_code, acs3.json()["Code"]) == (400, "IncompleteSignature")


# -- raw requests no SDK would send ----------------------------------------------------------------


def send_signed(
    url: str,
    *,
    action: str = "GetCallerIdentity",
    version: str = "2015-04-01",
    date: datetime | None = None,
    account: str = "app",
) -> httpx.Response:
    """A correctly signed ACS3 RPC request, with whatever date, action and version asked for."""
    stamp = (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = signed_headers(url, account=account, action=action, version=version, date=stamp)
    headers["accept"] = "application/json"
    return httpx.post(f"{url}/", headers=headers, trust_env=False, timeout=30)


@pytest.mark.parametrize(
    ("minutes", "code"),
    [(-16, "InvalidTimeStamp.Expired"), (16, "InvalidTimeStamp.Expired"), (-14, None), (14, None)],
    ids=["16-min-old", "16-min-ahead", "14-min-old", "14-min-ahead"],
)
def test_request_date_must_be_within_15_minutes(
    upstream: str, minutes: int, code: str | None
) -> None:
    """A correctly signed request is refused once its date is more than 15 minutes off."""
    reply = send_signed(upstream, date=datetime.now(UTC) + timedelta(minutes=minutes))
    if code is None:
        assert reply.status_code == 200
        assert reply.json()["AccountId"] == UIDS["app"]
    else:
        assert (reply.status_code, reply.json()["Code"]) == (400, code)


def test_unknown_version_is_refused(upstream: str) -> None:
    """A version no product has is refused before any signature is even looked at."""
    reply = send_signed(upstream, version="2099-01-01")
    assert (reply.status_code, reply.json()["Code"]) == (400, "InvalidVersion")


@pytest.mark.contract_breaches
def test_unknown_action_is_refused_after_authentication(upstream: str, admin: SandboxAdmin) -> None:
    """An action the version lacks is a 404, and the log shows the caller was authenticated."""
    reply = send_signed(upstream, action="DescribeEverything", version="2015-04-01")
    assert (reply.status_code, reply.json()["Code"]) == (404, "InvalidAction.NotFound")
    [logged] = admin.requests()
    assert (logged["account"], logged["product"], logged["code"]) == (
        "app",
        "sts",
        "InvalidAction.NotFound",
    )


# -- temporary credentials -------------------------------------------------------------------------


def _expire_access_key(state: Path, key_id: str) -> None:
    """Move a stored STS key's expiry into the past: the passage of time, without the wait."""
    with sqlite3.connect(state, timeout=10) as db:
        [(body,)] = db.execute(
            "SELECT body FROM resources WHERE kind='access_key' AND id=?", (key_id,)
        ).fetchall()
        doc = json.loads(body)
        doc["expires_at"] = time.time() - 1
        db.execute(
            "UPDATE resources SET body=? WHERE kind='access_key' AND id=?",
            (json.dumps(doc), key_id),
        )
    db.close()


def test_expired_security_token_is_refused(tmp_path: Path) -> None:
    """STS keys work until their expiry and are refused after it, with the documented code.

    AssumeRole's shortest session is 15 minutes, so a private sandbox is used whose state file
    this test can age: only the stored expiry changes; the check is the sandbox's own.
    """
    state = tmp_path / "state.sqlite"
    with SandboxProcess(state=state) as process:
        factory = SdkFactory(process.endpoint)
        arn = make_role(factory, "short-lived", trust(ram=[UIDS["app"]]))
        request = sts_models.AssumeRoleRequest(role_arn=arn, role_session_name="tests")
        creds = factory.sts("app").assume_role(request).body.credentials
        temporary = factory.sts(
            key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token
        )
        assert temporary.get_caller_identity().body.account_id == UIDS["registry"]
        _expire_access_key(state, creds.access_key_id)
        with pytest.raises(ClientException) as refused:
            temporary.get_caller_identity()
    assert (refused.value.code, refused.value.status_code) == ("InvalidSecurityToken.Expired", 400)
