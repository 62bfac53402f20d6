"""Every request is held to Alibaba's published API metadata before its handler runs.

Each kind of refusal is sent twice: through the official SDK (its generic `call_api` where the
typed client cannot say it) and as a raw ACS3-signed request. The shipped metadata must be what
`scripts/regenerate-api-meta` makes of the reference copy, so a hand edit fails here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from alibabacloud_vpc20160428 import models as vpc_models
from darabonba.runtime import RuntimeOptions

from sandbox import api_meta
from sandbox.contract import Action, Contract, received
from sandbox.errors import ApiError
from sandbox.routes import PRODUCTS, ROUTES
from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.wire import Identified, RawRequest
from tests.support.clients import SdkFactory
from tests.support.raw_requests import send_acs3

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path("/work/shared/reference/api-meta")
NS = "cn-hangzhou:demo"


# -- the shipped metadata ----------------------------------------------------------------------


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the reference copy is not on this machine")
def test_shipped_metadata_is_what_the_script_makes(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "regenerate-api-meta"
    command = [sys.executable, str(script), str(REFERENCE), "--out", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True)
    for product in PRODUCTS:
        name = api_meta.file_name(product.code, product.version)
        shipped = (ROOT / "sandbox" / "api_meta" / name).read_text()
        assert shipped == (tmp_path / name).read_text(), f"{name} differs from the script's"
        assert api_meta.load(product.code, product.version)["source"]["commit"]


def test_every_route_has_its_contract_and_agrees_with_it() -> None:
    contract = Contract((p.code, p.version) for p in PRODUCTS)
    for route in ROUTES:
        action = contract.action(route.product.version, route.action)
        assert route.method in action.methods, route.action
        if route.product.style == "ROA":
            assert action.path == route.path, route.action
    actions, parameters = contract.counts()
    assert actions == len(ROUTES)
    assert parameters == sum(
        len(api["parameters"])
        for p in PRODUCTS
        for api in api_meta.load(p.code, p.version)["apis"].values()
    )


# -- each kind of refusal, through the SDK -----------------------------------------------------


def generic(
    client: Any,
    action: str,
    version: str,
    *,
    style: str = "RPC",
    method: str = "POST",
    path: str = "/",
    query: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
) -> Any:
    """The SDK's own `call_api`, for what its typed methods cannot send."""
    params = Params(
        action=action,
        version=version,
        protocol="HTTPS",
        pathname=path,
        method=method,
        auth_type="AK",
        style=style,
        req_body_type="formData",
        body_type="json",
    )
    request = OpenApiRequest(query=query or {}, body=body)
    return client.call_api(params, request, RuntimeOptions())


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientException) as refused:
        call()
    error = refused.value
    return error.status_code, error.code, error.message


SDK_CASES: list[tuple[str, Callable[[SdkFactory], Any], int, str, str]] = [
    (
        "unknown-rpc-action",
        lambda sdk: generic(sdk.ram(), "GetNothing", "2015-05-01"),
        404,
        "InvalidAction.NotFound",
        "GetNothing",
    ),
    (
        "unknown-roa-path",
        lambda sdk: generic(
            sdk.sae(), "DescribeNothing", "2019-05-06", style="ROA", method="GET", path="/pop/x"
        ),
        404,
        "InvalidAction.NotFound",
        "DescribeNothing",
    ),
    (
        "missing-required",
        lambda sdk: sdk.ram().get_role(ram_models.GetRoleRequest()),
        400,
        "MissingParameter",
        '"RoleName"',
    ),
    (
        "not-an-integer",
        lambda sdk: sdk.sae().describe_secret(
            sae_models.DescribeSecretRequest(namespace_id=NS, secret_id="abc")
        ),
        400,
        "InvalidParameter",
        '"SecretId"',
    ),
    (
        "out-of-range",
        lambda sdk: sdk.sae().describe_secret(
            sae_models.DescribeSecretRequest(namespace_id=NS, secret_id=10**9 + 1)
        ),
        400,
        "InvalidParameter",
        '"SecretId"',
    ),
    (
        "not-in-enum",
        lambda sdk: sdk.sae().create_secret(
            sae_models.CreateSecretRequest(
                namespace_id=NS,
                secret_name="x",
                secret_type="Basic",
                secret_data=sae_models.CreateSecretRequestSecretData(secret_data="{}"),
            )
        ),
        400,
        "InvalidParameter",
        '"SecretType"',
    ),
    (
        "not-a-boolean",
        lambda sdk: generic(
            sdk.sae(),
            "DescribeNamespaceList",
            "2019-05-06",
            style="ROA",
            method="GET",
            path="/pop/v1/sam/namespace/describeNamespaceList",
            query={"ContainCustom": "maybe"},
        ),
        400,
        "InvalidParameter",
        '"ContainCustom"',
    ),
    (
        "too-many-items",
        lambda sdk: sdk.vpc().describe_vpcs(
            vpc_models.DescribeVpcsRequest(
                region_id="cn-hangzhou",
                tag=[vpc_models.DescribeVpcsRequestTag(key=f"k{i}", value="v") for i in range(21)],
            )
        ),
        400,
        "InvalidParameter",
        '"Tag"',
    ),
    (
        "method-not-allowed",
        lambda sdk: generic(
            sdk.cr(),
            "GetRepoTag",
            "2018-12-01",
            query={"InstanceId": "cri-demo", "RepoId": "crr-x", "Tag": "1.0"},
        ),
        404,
        "InvalidAction.NotFound",
        "GetRepoTag",
    ),
    (
        "wrong-position",
        lambda sdk: generic(sdk.ram(), "GetRole", "2015-05-01", body={"RoleName": "x"}),
        400,
        "InvalidParameter",
        '"RoleName"',
    ),
]


@pytest.mark.parametrize(
    ("call", "status", "code", "named"),
    [case[1:] for case in SDK_CASES],
    ids=[case[0] for case in SDK_CASES],
)
@pytest.mark.contract_breaches
def test_refusals_through_the_sdk(
    fast_sdk: SdkFactory,
    fast_admin: SandboxAdmin,
    call: Callable[[SdkFactory], Any],
    status: int,
    code: str,
    named: str,
) -> None:
    """The gateway's code and status, naming the parameter; the handler never ran."""
    got_status, got_code, message = refusal(lambda: call(fast_sdk))
    assert (got_status, got_code) == (status, code)
    assert named in message
    [logged] = fast_admin.requests()
    assert logged["code"] == code


@pytest.mark.contract_breaches
def test_unknown_parameters_are_ignored_and_logged(
    fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    body = generic(fast_sdk.sts(), "GetCallerIdentity", "2015-04-01", query={"Shoe": "42"})
    assert body["statusCode"] == 200
    fast_sdk.cr().list_instance(cr_models.ListInstanceRequest(page_size=10))
    first, second = fast_admin.requests()
    assert (first["status"], first["ignored"]) == (200, ["Shoe"])
    assert second["ignored"] == []


def test_sdk_sends_each_style_as_the_contract_reads_it(
    fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    """repeatList (`Tag.1.Key`), flat (`NetworkInterfaceIds.1`), json and booleans pass."""
    fast_sdk.vpc().describe_vpcs(
        vpc_models.DescribeVpcsRequest(
            region_id="cn-hangzhou", tag=[vpc_models.DescribeVpcsRequestTag(key="k", value="v")]
        )
    )
    with pytest.raises(ClientException) as unknown_table:
        fast_sdk.vpc().describe_snat_table_entries(
            vpc_models.DescribeSnatTableEntriesRequest(
                region_id="cn-hangzhou", snat_table_id="stb-x", network_interface_ids=["eni-1"]
            )
        )
    assert unknown_table.value.code == "InvalidSnatTableId.NotFound"  # the handler ran
    fast_sdk.ram("registry").list_roles(
        ram_models.ListRolesRequest(tag=[ram_models.ListRolesRequestTag(key="k", value="v")])
    )
    fast_sdk.sae().describe_namespace_list(
        sae_models.DescribeNamespaceListRequest(contain_custom=True)
    )
    logged = fast_admin.requests()
    assert [r["ignored"] for r in logged] == [[]] * 4
    assert [r["status"] for r in logged] == [200, 404, 200, 200]
    assert logged[1]["params"]["NetworkInterfaceIds.1"] == "eni-1"


# -- each kind of refusal, as a raw signed request ---------------------------------------------

SAE = "2019-05-06"
SECRET = "/pop/v1/sam/secret/secret"
RAW_CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    (
        "unknown-rpc-action",
        {"action": "GetNothing", "version": "2015-05-01"},
        404,
        "InvalidAction.NotFound",
        "GetNothing",
    ),
    (
        "unknown-roa-path",
        {"action": "DescribeNothing", "version": SAE, "method": "GET", "path": "/pop/x"},
        404,
        "InvalidAction.NotFound",
        "DescribeNothing",
    ),
    (
        "missing-required",
        {"action": "GetRole", "version": "2015-05-01"},
        400,
        "MissingParameter",
        '"RoleName"',
    ),
    (
        "not-an-integer",
        {
            "action": "DescribeSecret",
            "version": SAE,
            "method": "GET",
            "path": SECRET,
            "query": [("NamespaceId", NS), ("SecretId", "1.5")],
        },
        400,
        "InvalidParameter",
        '"SecretId"',
    ),
    (
        "out-of-range",
        {
            "action": "DescribeSecret",
            "version": SAE,
            "method": "GET",
            "path": SECRET,
            "query": [("NamespaceId", NS), ("SecretId", "0")],
        },
        400,
        "InvalidParameter",
        '"SecretId"',
    ),
    (
        "not-in-enum",
        {
            "action": "CreateSecret",
            "version": SAE,
            "path": SECRET,
            "query": [
                ("NamespaceId", NS),
                ("SecretName", "x"),
                ("SecretType", "opaque"),
                ("SecretData", '{"SecretData": "{}"}'),
            ],
        },
        400,
        "InvalidParameter",
        '"SecretType"',
    ),
    (
        "json-shape",
        {
            "action": "UpdateSecret",
            "version": SAE,
            "method": "PUT",
            "path": SECRET,
            "query": [("NamespaceId", NS), ("SecretId", "1"), ("SecretData", '{"SecretData": 1}')],
        },
        400,
        "InvalidParameter",
        '"SecretData.SecretData"',
    ),
    (
        "item-index",
        {
            "action": "DescribeVpcs",
            "version": "2016-04-28",
            "query": [("RegionId", "cn-hangzhou"), ("Tag.0.Key", "k")],
        },
        400,
        "InvalidParameter",
        '"Tag.0.Key"',
    ),
    (
        "method-not-allowed",
        {
            "action": "GetRepoTag",
            "version": "2018-12-01",
            "query": [("InstanceId", "cri-demo"), ("RepoId", "crr-x"), ("Tag", "1.0")],
        },
        404,
        "InvalidAction.NotFound",
        "GetRepoTag",
    ),
    (
        "roa-method-not-allowed",
        {
            "action": "DeleteApplication",
            "version": SAE,
            "method": "GET",
            "path": "/pop/v1/sam/app/deleteApplication",
            "query": [("AppId", "x")],
        },
        404,
        "InvalidAction.NotFound",
        "DeleteApplication",
    ),
    (
        "wrong-position",
        {"action": "GetRole", "version": "2015-05-01", "form": [("RoleName", "x")]},
        400,
        "InvalidParameter",
        '"RoleName"',
    ),
    (
        "body-parameter-in-query",
        {
            "action": "CreateApplication",
            "version": SAE,
            "path": "/pop/v1/sam/app/createApplication",
            "query": [
                ("AppName", "a"),
                ("PackageType", "Image"),
                ("Replicas", "1"),
                ("AcrInstanceId", "cri-demo"),
            ],
        },
        400,
        "InvalidParameter",
        '"AcrInstanceId"',
    ),
]


@pytest.mark.parametrize(
    ("request_", "status", "code", "named"),
    [case[1:] for case in RAW_CASES],
    ids=[case[0] for case in RAW_CASES],
)
@pytest.mark.contract_breaches
def test_refusals_of_raw_signed_requests(
    fast_sandbox_process: SandboxProcess,
    fast_admin: SandboxAdmin,
    request_: dict[str, Any],
    status: int,
    code: str,
    named: str,
) -> None:
    answer = send_acs3(fast_sandbox_process.url, **request_)
    assert (answer.status_code, answer.json()["Code"]) == (status, code)
    assert named in answer.json()["Message"]
    [logged] = fast_admin.requests()
    assert (logged["account"], logged["code"]) == ("app", code)


@pytest.mark.contract_breaches
def test_raw_unknown_parameter_is_ignored(
    fast_sandbox_process: SandboxProcess, fast_admin: SandboxAdmin
) -> None:
    answer = send_acs3(
        fast_sandbox_process.url,
        action="GetCallerIdentity",
        version="2015-04-01",
        query=[("Shoe", "42")],
        form=[("Hat", "7")],
    )
    assert answer.status_code == 200
    [logged] = fast_admin.requests()
    assert logged["ignored"] == ["Shoe", "Hat"]


# -- schema rules no emulated action uses yet ----------------------------------------------------


def probe_action() -> Action:
    """An action whose parameter has length and pattern limits: none of the emulated actions'
    parameters has one in today's metadata, so the rules are held to a made-up contract."""
    schema = {"type": "string", "minLength": "2", "maxLength": "4", "pattern": "^[a-z]+$"}
    api = {"methods": ["post"], "parameters": [{"name": "Name", "in": "query", "schema": schema}]}
    return Action("probe", "Probe", api, {})


@pytest.mark.parametrize(
    ("value", "problem"),
    [("a", "shorter"), ("abcde", "longer"), ("ab1", "match"), ("abcd", None)],
)
def test_length_and_pattern(value: str, problem: str | None) -> None:
    raw = RawRequest("POST", "/", f"Name={value}", {})
    ident = Identified("acs3", "2000-01-01", "Probe")
    if problem is None:
        assert probe_action().check(raw.method, received(raw, ident)).typed == {"Name": value}
        return
    with pytest.raises(ApiError) as refused:
        probe_action().check(raw.method, received(raw, ident))
    assert refused.value.code == "InvalidParameter"
    assert '"Name"' in refused.value.message and problem in refused.value.message


def test_the_products_list_of_parameters_the_contract_lacks_is_exact() -> None:
    """crossdeploy/sae_facts.py names the SDK parameters the SAE metadata does not list, so the
    product never sends one the gateway would ignore; it must be exactly the difference."""
    from alibabacloud_sae20190506 import models as sae_models

    from crossdeploy.sae_facts import NOT_IN_API_CONTRACT
    from crossdeploy.sae_params import wire_names

    apis = api_meta.load("sae", "2019-05-06")["apis"]
    lacking: set[str] = set()
    for action, model in (
        ("CreateApplication", sae_models.CreateApplicationRequest),
        ("DeployApplication", sae_models.DeployApplicationRequest),
    ):
        listed = {p["name"] for p in apis[action]["parameters"]}
        lacking |= set(wire_names(model)) - listed
    assert lacking == NOT_IN_API_CONTRACT
