"""Issue 6, sandbox hardening: malformed requests get a 4xx with an error code, never a 500 or a
crash; replayed nonces and bad dates are refused; one account's keys never reach another's.

Raw requests are built here (httpx, or a socket for a truncated body) because no SDK sends them;
well-formed calls go through the official SDKs. The replay of an SDK's own request and dates 16
minutes off are in tests/sandbox/test_signing.py (test_replayed_request_is_refused,
test_request_date_must_be_within_15_minutes); the cases below add what those do not cover.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import signing
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, SdkFactory
from tests.support.deploy_support import normalized
from tests.support.raw_requests import signed_headers
from tests.support.sae_secrets import create as create_secret
from tests.support.sae_setup import create_app, ready_cross_account

Record = Callable[[str, Any], None]


@pytest.fixture(scope="module")
def http(sandbox_process: SandboxProcess) -> Iterator[httpx.Client]:
    """A plain HTTP client of the session sandbox; tests take `admin` too, so each starts from
    a reset sandbox (no faults, an empty request log)."""
    with httpx.Client(base_url=sandbox_process.url, trust_env=False, timeout=30) as client:
        yield client


def assert_refused(reply: httpx.Response) -> str:
    """A 4xx whose body names an error code (HEAD replies have no body); returns the code."""
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    if reply.request.method == "HEAD":
        return str(reply.status_code)
    code = reply.json().get("Code")
    assert isinstance(code, str) and code, reply.text[:300]
    return code


def assert_healthy(http: httpx.Client) -> None:
    assert http.get("/_sandbox/health").json() == {"ok": True}
    failed = [r for r in http.get("/_sandbox/requests").json() if r.get("status", 0) >= 500]
    assert failed == []


# -- fuzzed raw requests ---------------------------------------------------------------------------

VERSIONS = ("2015-04-01", "2015-05-01", "2016-04-28", "2018-12-01", "2019-05-06", "1999-01-01")
text = st.text(max_size=40)
odd_text = st.one_of(text, st.sampled_from(("", "\x00", "%", "%zz", "ä", "=", "&&", "a" * 5000)))
authorization = st.one_of(
    st.just(""),
    text,
    st.builds(lambda t: f"ACS3-HMAC-SHA256 {t}", text),
    st.builds(
        lambda k, s: f"ACS3-HMAC-SHA256 Credential={k},SignedHeaders=host;x-acs-date,Signature={s}",
        st.sampled_from((KEYS["app"][0], KEYS["registry"][0], "LTAInobody")),
        text,
    ),
    st.builds(lambda k, s: f"acs {k}:{s}", st.sampled_from((KEYS["app"][0], "", "x")), text),
    st.builds(lambda t: f"ACS3-HMAC-SHA1 {t}", text),
)
headers = st.fixed_dictionaries(
    {"authorization": authorization},
    optional={
        "x-acs-version": st.one_of(st.sampled_from(VERSIONS), text),
        "x-acs-action": st.one_of(st.sampled_from(("GetCallerIdentity", "CreateRole")), text),
        "x-acs-date": st.one_of(st.just("2020-01-01T00:00:00Z"), text),
        "x-acs-signature-nonce": text,
        "x-acs-content-sha256": st.one_of(st.just(signing.EMPTY_SHA256), text),
        "x-acs-security-token": text,
        "content-type": st.sampled_from(
            ("application/json", "application/x-www-form-urlencoded", "text/plain", "")
        ),
        "date": text,
    },
)
query = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(("Action", "Version", "Signature", "AccessKeyId", "Timestamp")), text
        ),
        odd_text,
    ),
    max_size=8,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.just(b"\xff\xfe\xfa{"),
    st.just(b'{"a": ' * 2000),
    st.just(b"a=%ff%fe&b"),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(text, text, max_size=4)),
)
paths = st.one_of(
    st.sampled_from(("/", "/pop/v1/sam/app/describeApplicationConfig", "/acr", "//", "/%2e%2e/")),
    st.builds(lambda t: "/" + quote(t, safe=""), text),
)


def _safe(value: str) -> str:
    """What a header may carry (httpx refuses line breaks and non-Latin-1 characters)."""
    return "".join(c for c in value if " " <= c <= "~").strip()


@pytest.mark.reliability(
    "sandbox hardening",
    "fuzzed raw requests (hypothesis): odd methods, paths, headers, signatures, query "
    "parameters and bodies, RPC and ROA styles; healthy after each, no 5xx logged",
)
def test_fuzzed_requests_get_a_4xx_with_a_code(
    admin: SandboxAdmin, http: httpx.Client, record_property: Record
) -> None:
    codes: Counter[str] = Counter()

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        method=st.sampled_from(
            ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW")
        ),
        path=paths,
        header_values=headers,
        params=query,
        body=bodies,
    )
    def send(
        method: str,
        path: str,
        header_values: dict[str, str],
        params: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        sent = {k: _safe(v) for k, v in header_values.items()}
        query_text = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
        reply = http.request(
            method, f"{path}?{query_text}" if params else path, headers=sent, content=body
        )
        codes[assert_refused(reply)] += 1
        assert_healthy(http)

    send()
    top = ", ".join(f"{code} {n}" for code, n in codes.most_common(6))
    record_property(
        "outcome",
        f"{sum(codes.values())} requests, all 4xx with a code ({len(codes)} distinct; {top}); "
        "healthy after each, 0 5xx logged",
    )


# -- huge, truncated and odd requests, one by one ------------------------------------------------


def _long_query_value(url: str) -> httpx.Request:
    return httpx.Request("POST", f"{url}/?Action=GetCallerIdentity&x={'v' * 60_000}")


def _many_params(url: str) -> httpx.Request:
    body = "&".join(f"p{i}={i}" for i in range(10_000))
    query = "Signature=x&Version=2015-04-01&AccessKeyId=LTAInobody"
    form = {"content-type": "application/x-www-form-urlencoded"}
    return httpx.Request("POST", f"{url}/?{query}", headers=form, content=body)


def _huge_body(url: str) -> httpx.Request:
    return httpx.Request("POST", f"{url}/", content=b"x" * (5 * 1024 * 1024))


def _megabyte_role_name(url: str) -> httpx.Request:
    body = b"AssumeRolePolicyDocument=%7B%7D&RoleName=" + b"r" * 1_000_000
    headers = signed_headers(
        url,
        body=body,
        action="CreateRole",
        version="2015-05-01",
        content_type="application/x-www-form-urlencoded",
    )
    return httpx.Request("POST", f"{url}/", headers=headers, content=body)


def _body_cut_after_signing(url: str) -> httpx.Request:
    body = json.dumps({"RoleName": "x" * 100}).encode()
    headers = signed_headers(url, body=body, content_type="application/json")
    return httpx.Request("POST", f"{url}/", headers=headers, content=body[:20])


def _invalid_utf8_form(url: str) -> httpx.Request:
    body = b"RoleName=\xff\xfe"
    form = "application/x-www-form-urlencoded"
    return httpx.Request(
        "POST", f"{url}/", headers=signed_headers(url, body=body, content_type=form), content=body
    )


def _deep_json(url: str) -> httpx.Request:
    body = b"[" * 100_000
    return httpx.Request(
        "POST",
        f"{url}/",
        headers=signed_headers(url, body=body, content_type="application/json"),
        content=body,
    )


def _bad_version(url: str) -> httpx.Request:
    return httpx.Request("POST", f"{url}/", headers=signed_headers(url, version="x" * 10_000))


def _unknown_key(url: str) -> httpx.Request:
    headers = signed_headers(url)
    headers["authorization"] = headers["authorization"].replace(KEYS["app"][0], "LTAInobody")
    return httpx.Request("POST", f"{url}/", headers=headers)


def _missing_nonce(url: str) -> httpx.Request:
    return httpx.Request("POST", f"{url}/", headers=signed_headers(url, nonce=""))


def _malformed_date(url: str) -> httpx.Request:
    return httpx.Request("POST", f"{url}/", headers=signed_headers(url, date="yesterday"))


def _year_2100(url: str) -> httpx.Request:
    return httpx.Request(
        "POST", f"{url}/", headers=signed_headers(url, date="2100-01-01T00:00:00Z")
    )


def _epoch(url: str) -> httpx.Request:
    return httpx.Request(
        "POST", f"{url}/", headers=signed_headers(url, date="1970-01-01T00:00:00Z")
    )


ODD_REQUESTS: dict[str, tuple[Callable[[str], httpx.Request], tuple[str, ...]]] = {
    "60 KB query value": (_long_query_value, ("IncompleteSignature",)),
    "10k form parameters": (
        _many_params,
        ("InvalidAccessKeyId.NotFound", "MissingVersion", "IncompleteSignature"),
    ),
    "5 MiB body": (_huge_body, ("RequestEntityTooLarge",)),
    "1 MB RoleName, signed": (_megabyte_role_name, ()),
    "body cut after signing": (_body_cut_after_signing, ("SignatureDoesNotMatch",)),
    "invalid UTF-8 form body": (_invalid_utf8_form, ("InvalidParameter",)),
    "JSON nested 100k deep": (_deep_json, ("InvalidParameter",)),
    "10k-character version": (_bad_version, ("InvalidVersion",)),
    "unknown access key": (_unknown_key, ("InvalidAccessKeyId.NotFound",)),
    "no signature nonce": (_missing_nonce, ("MissingSignatureNonce",)),
    "malformed date": (_malformed_date, ("InvalidTimeStamp.Format",)),
    "date in 2100": (_year_2100, ("InvalidTimeStamp.Expired",)),
    "date 1970": (_epoch, ("InvalidTimeStamp.Expired",)),
}


@pytest.mark.reliability("sandbox hardening", "an odd request is refused with its code")
@pytest.mark.parametrize("case", list(ODD_REQUESTS))
@pytest.mark.contract_breaches
def test_odd_requests_are_refused_with_their_code(
    admin: SandboxAdmin,
    http: httpx.Client,
    sandbox_process: SandboxProcess,
    case: str,
    record_property: Record,
) -> None:
    build, codes = ODD_REQUESTS[case]
    reply = http.send(build(sandbox_process.url))
    code = assert_refused(reply)
    assert code in codes or not codes, (code, reply.text[:300])
    assert_healthy(http)
    record_property("outcome", f"{reply.status_code} {code}; sandbox healthy")


@pytest.mark.reliability(
    "sandbox hardening", "a body shorter than its Content-Length, then the client hangs up"
)
def test_truncated_body_then_hang_up(
    admin: SandboxAdmin,
    http: httpx.Client,
    sandbox_process: SandboxProcess,
    record_property: Record,
) -> None:
    host, port = urlsplit(sandbox_process.url).netloc.split(":")
    body = b'{"RoleName": "shop"}'
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 500}\r\n"
    )
    for name, value in signed_headers(sandbox_process.url, body=body).items():
        if name != "host":
            head += f"{name}: {value}\r\n"
    before = len(http.get("/_sandbox/requests").json())
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        answer = conn.recv(4096)
    after = http.get("/_sandbox/requests").json()[before:]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert [r for r in after if r.get("write")] == []
    assert_healthy(http)
    record_property("outcome", "no handler ran, nothing written; sandbox healthy")


# -- replay --------------------------------------------------------------------------------------


@pytest.mark.reliability(
    "sandbox hardening",
    "a used nonce signed again for another action is refused (SignatureNonceUsed); the SDK "
    "replay itself: test_signing.py::test_replayed_request_is_refused",
)
def test_a_used_nonce_is_refused_even_for_another_request(
    admin: SandboxAdmin, sandbox_process: SandboxProcess, record_property: Record
) -> None:
    url, nonce = sandbox_process.url, uuid.uuid4().hex
    first = httpx.post(f"{url}/", headers=signed_headers(url, nonce=nonce), trust_env=False)
    assert first.status_code == 200
    other = signed_headers(url, nonce=nonce, action="ListRoles", version="2015-05-01")
    again = httpx.post(f"{url}/", headers=other, trust_env=False)
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    assert admin.writes() == []
    record_property("outcome", "first 200; second 400 SignatureNonceUsed; no write")


# -- one account's keys never reach another's resources ------------------------------------------


def _refused(call: Callable[[], Any]) -> str:
    """The code of a refused call: an error status, or ACR's HTTP 200 with `IsSuccess: false`."""
    try:
        response = call()
    except ClientException as refused:
        return str(refused.code)
    assert response.body.is_success is False
    return str(response.body.code)


def assert_no_write_landed(admin: SandboxAdmin, since: int) -> None:
    """Every write call after request `since` was refused (the log gives each refusal a code)."""
    writes = [r for r in admin.requests()[since:] if r["write"]]
    assert [r for r in writes if r["code"] is None] == []


def _unchanged(state: dict[str, Any]) -> str:
    """An account's resources without what moves by itself (change orders, timestamps)."""
    return json.dumps(normalized({"app": state, "registry": {}})["app"], sort_keys=True)


def _cr(sdk: SdkFactory, admin: SandboxAdmin) -> list[str]:
    """App's keys against registry's ACR instance, repository, tags, ACL and login token."""
    cr = sdk.cr("app")
    acl_before = admin.state()["registry"]
    seen = [
        _refused(lambda: cr.get_instance(cr_models.GetInstanceRequest(instance_id="cri-demo"))),
        _refused(
            lambda: cr.get_repository(
                cr_models.GetRepositoryRequest(
                    instance_id="cri-demo", repo_namespace_name="shop", repo_name="web"
                )
            )
        ),
        _refused(
            lambda: cr.get_authorization_token(
                cr_models.GetAuthorizationTokenRequest(instance_id="cri-demo")
            )
        ),
        _refused(
            lambda: cr.create_instance_endpoint_acl_policy(
                cr_models.CreateInstanceEndpointAclPolicyRequest(
                    instance_id="cri-demo", endpoint_type="internet", entry="0.0.0.0/0"
                )
            )
        ),
        _refused(
            lambda: cr.update_instance_endpoint_status(
                cr_models.UpdateInstanceEndpointStatusRequest(
                    instance_id="cri-demo", endpoint_type="internet", enable=False
                )
            )
        ),
    ]
    listed = cr.list_instance(cr_models.ListInstanceRequest()).body.instances or []
    assert [i.instance_id for i in listed] == []
    assert admin.state()["registry"] == acl_before
    assert_no_write_landed(admin, 0)
    return seen


def _sae(sdk: SdkFactory, admin: SandboxAdmin) -> list[str]:
    """Registry's keys against app's SAE application, namespace and secrets."""
    app_id, _ = create_app(sdk, ready_cross_account(sdk))
    secret = create_secret(sdk.sae("app"))
    secret_id = secret.body.data.secret_id
    before, mark = admin.state()["app"], len(admin.requests())
    sae = sdk.sae("registry")
    seen = [
        _refused(
            lambda: sae.describe_application_config(
                sae_models.DescribeApplicationConfigRequest(app_id=app_id)
            )
        ),
        _refused(
            lambda: sae.delete_application(sae_models.DeleteApplicationRequest(app_id=app_id))
        ),
        _refused(
            lambda: sae.deploy_application(
                sae_models.DeployApplicationRequest(app_id=app_id, replicas=9)
            )
        ),
        _refused(
            lambda: sae.describe_secret(
                sae_models.DescribeSecretRequest(
                    namespace_id="cn-hangzhou:demo", secret_id=secret_id
                )
            )
        ),
        _refused(
            lambda: sae.delete_secret(
                sae_models.DeleteSecretRequest(namespace_id="cn-hangzhou:demo", secret_id=secret_id)
            )
        ),
    ]
    apps = sae.list_applications(sae_models.ListApplicationsRequest()).body.data.applications or []
    assert apps == []
    listing = sae_models.DescribeNamespaceListRequest(contain_custom=True)
    namespaces = sae.describe_namespace_list(listing).body.data
    assert "cn-hangzhou:demo" not in [n.namespace_id for n in namespaces or []]
    assert _unchanged(admin.state()["app"]) == _unchanged(before)
    assert_no_write_landed(admin, mark)
    return seen


def _vpc(sdk: SdkFactory, admin: SandboxAdmin) -> list[str]:
    """Registry's keys against app's VPC, vSwitch and NAT gateway."""
    vpc = sdk.vpc("registry")
    region = "cn-hangzhou"
    seen = [
        _refused(
            lambda: vpc.describe_vpc_attribute(
                vpc_models.DescribeVpcAttributeRequest(region_id=region, vpc_id="vpc-app")
            )
        ),
        _refused(
            lambda: vpc.describe_vswitch_attributes(
                vpc_models.DescribeVSwitchAttributesRequest(
                    region_id=region, v_switch_id="vsw-app-h"
                )
            )
        ),
    ]
    vpcs = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region)).body.vpcs.vpc
    assert [v.vpc_id for v in vpcs] == ["vpc-reg"]
    nats = vpc.describe_nat_gateways(
        vpc_models.DescribeNatGatewaysRequest(region_id=region, nat_gateway_id="ngw-app")
    ).body.nat_gateways.nat_gateway
    assert nats == []
    assert_no_write_landed(admin, 0)
    return seen


CROSS_ACCOUNT: dict[str, Callable[[SdkFactory, SandboxAdmin], list[str]]] = {
    "acr": _cr,
    "sae": _sae,
    "vpc": _vpc,
}


@pytest.mark.reliability(
    "sandbox hardening",
    "one account's keys against another's resources (RAM: tests/sandbox/test_isolation.py)",
)
@pytest.mark.parametrize("product", list(CROSS_ACCOUNT))
def test_keys_never_reach_another_accounts_resources(
    sdk: SdkFactory, admin: SandboxAdmin, product: str, record_property: Record
) -> None:
    codes = CROSS_ACCOUNT[product](sdk, admin)
    record_property("outcome", f"refused: {', '.join(codes)}; nothing listed or changed")
