"""SAE namespaces over ROA, through the official SDK with both signature schemes."""

from __future__ import annotations

import pytest
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.support.clients import SdkFactory


@pytest.mark.parametrize("v2", [False, True], ids=["acs3", "roa-v1"])
def test_namespace_list_names_vpc_and_vswitch(sdk: SdkFactory, v2: bool) -> None:
    body = (
        sdk.sae("app", v2=v2)
        .describe_namespace_list(sae_models.DescribeNamespaceListRequest(contain_custom=True))
        .body
    )
    assert body.success is True
    by_id = {ns.namespace_id: ns for ns in body.data}
    demo = by_id["cn-hangzhou:demo"]
    assert (demo.vpc_id, demo.v_switch_id, demo.security_group_id) == (
        "vpc-app",
        "vsw-app-h",
        "sg-app",
    )
    assert demo.region_id == "cn-hangzhou"
    assert demo.custom is True


@pytest.mark.parametrize(
    ("contain_custom", "listed"),
    [(None, []), (False, []), (True, ["cn-hangzhou:demo", "cn-hangzhou:isolated"])],
    ids=["left-out", "false", "true"],
)
def test_custom_namespaces_are_listed_only_when_asked_for(
    sdk: SdkFactory, contain_custom: bool | None, listed: list[str]
) -> None:
    """`ContainCustom` has no documented default: left out, it reads as false."""
    request = sae_models.DescribeNamespaceListRequest(contain_custom=contain_custom)
    body = sdk.sae("app").describe_namespace_list(request).body
    assert sorted(str(ns.namespace_id) for ns in body.data) == listed


def test_namespaces_belong_to_their_account(sdk: SdkFactory) -> None:
    request = sae_models.DescribeNamespaceListRequest(contain_custom=True)
    body = sdk.sae("registry").describe_namespace_list(request).body
    assert body.data == []
    with pytest.raises(ClientException) as missing:
        sdk.sae("registry").describe_namespace(
            sae_models.DescribeNamespaceRequest(namespace_id="cn-hangzhou:demo")
        )
    assert (missing.value.code, missing.value.status_code) == ("InvalidNamespaceId.NotFound", 404)


def test_describe_namespace_by_id_and_short_id(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    by_id = sae.describe_namespace(
        sae_models.DescribeNamespaceRequest(namespace_id="cn-hangzhou:demo")
    )
    assert by_id.body.data.namespace_name == "demo"
    by_short = sae.describe_namespace(
        sae_models.DescribeNamespaceRequest(name_space_short_id="isolated")
    )
    assert by_short.body.data.namespace_id == "cn-hangzhou:isolated"
    with pytest.raises(ClientException) as empty:
        sae.describe_namespace(sae_models.DescribeNamespaceRequest())
    assert empty.value.code == "InvalidParameter.NotEmpty"


@pytest.mark.contract_breaches
def test_unrouted_roa_path_is_not_found(sdk: SdkFactory) -> None:
    with pytest.raises(ClientException) as missing:
        sdk.sae("app").describe_instance_specifications()
    assert (missing.value.code, missing.value.status_code) == ("InvalidAction.NotFound", 404)
