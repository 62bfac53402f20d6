"""VPC through the official SDK: network discovery in the demo world, paging, errors, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_vpc20160428 import models as vpc_models

from sandbox.testing import SandboxProcess
from sandbox.world import bundled_world_path
from tests.support.clients import UIDS, SdkFactory, refused

REGION = "cn-hangzhou"


def call(sdk: SdkFactory, action: str, account: str = "app", *, v2: bool = False, **kw: Any) -> Any:
    """One VPC action by its SDK name, e.g. `describe_vpcs`, with the request built from kw, by
    a client built for the region the request names (the demo region when it names none)."""
    request_class = getattr(vpc_models, _request_name(action))
    client = sdk.vpc(account, v2=v2, region=kw.get("region_id") or REGION)
    return getattr(client, action)(request_class(**kw)).body


def _request_name(action: str) -> str:
    words = {"vswitches": "VSwitches", "vswitch": "VSwitch"}
    return "".join(words.get(w, w.capitalize()) for w in action.split("_")) + "Request"


# -- happy paths -----------------------------------------------------------------------------------


def test_describe_vpcs_lists_the_callers_vpc(sdk: SdkFactory) -> None:
    body = call(sdk, "describe_vpcs", region_id=REGION)
    assert (body.total_count, body.page_number, body.page_size) == (1, 1, 10)
    vpc = body.vpcs.vpc[0]
    assert (vpc.vpc_id, vpc.vpc_name, vpc.cidr_block) == ("vpc-app", "app-vpc", "172.16.0.0/12")
    assert (vpc.region_id, vpc.status, vpc.is_default) == (REGION, "Available", False)
    assert vpc.v_switch_ids.v_switch_id == ["vsw-app-h", "vsw-app-b"]
    assert vpc.nat_gateway_ids.nat_gateway_ids == ["ngw-app"]
    assert vpc.owner_id == int(UIDS["app"])
    assert vpc.cen_status == "Detached"
    assert body.request_id


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"vpc_id": "vpc-app,vpc-reg"}, ["vpc-app"]),
        ({"vpc_id": "vpc-missing"}, []),
        ({"vpc_name": "app-vpc"}, ["vpc-app"]),
        ({"vpc_name": "registry-vpc"}, []),
        ({"is_default": True}, []),
        ({"is_default": False}, ["vpc-app"]),
    ],
    ids=["ids", "unknown-id", "name", "other-name", "default", "not-default"],
)
def test_describe_vpcs_filters(
    sdk: SdkFactory, filters: dict[str, Any], expected: list[str]
) -> None:
    body = call(sdk, "describe_vpcs", region_id=REGION, **filters)
    assert [v.vpc_id for v in body.vpcs.vpc] == expected
    assert body.total_count == len(expected)


def test_describe_vpc_attribute(sdk: SdkFactory) -> None:
    body = call(sdk, "describe_vpc_attribute", region_id=REGION, vpc_id="vpc-app")
    assert (body.vpc_id, body.cidr_block, body.status) == ("vpc-app", "172.16.0.0/12", "Available")
    assert body.v_switch_ids.v_switch_id == ["vsw-app-h", "vsw-app-b"]
    assert body.associated_cens.associated_cen == []
    assert body.vrouter_id == "vrt-app"


def test_describe_vswitches(sdk: SdkFactory) -> None:
    body = call(sdk, "describe_vswitches", region_id=REGION, vpc_id="vpc-app")
    assert body.total_count == 2
    first = body.v_switches.v_switch[0]
    assert (first.v_switch_id, first.zone_id, first.cidr_block) == (
        "vsw-app-h",
        "cn-hangzhou-h",
        "172.16.1.0/24",
    )
    assert (first.vpc_id, first.status, first.available_ip_address_count) == (
        "vpc-app",
        "Available",
        252,
    )
    assert first.route_table.route_table_type == "System"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"zone_id": "cn-hangzhou-b"}, ["vsw-app-b"]),
        ({"v_switch_id": "vsw-app-h"}, ["vsw-app-h"]),
        ({"v_switch_name": "nothing"}, []),
        ({"vpc_id": "vpc-reg"}, []),
    ],
    ids=["zone", "id", "name", "other-accounts-vpc"],
)
def test_describe_vswitches_filters(
    sdk: SdkFactory, filters: dict[str, Any], expected: list[str]
) -> None:
    body = call(sdk, "describe_vswitches", region_id=REGION, **filters)
    assert [v.v_switch_id for v in body.v_switches.v_switch] == expected


def test_describe_vswitches_by_vpc_needs_no_region(sdk: SdkFactory) -> None:
    body = call(sdk, "describe_vswitches", vpc_id="vpc-app")
    assert [v.v_switch_id for v in body.v_switches.v_switch] == ["vsw-app-h", "vsw-app-b"]
    assert refused(lambda: call(sdk, "describe_vswitches")) == ("MissingParameter", 400)


@pytest.mark.parametrize("region", [REGION, None], ids=["with-region", "without-region"])
def test_describe_vswitch_attributes(sdk: SdkFactory, region: str | None) -> None:
    body = call(sdk, "describe_vswitch_attributes", region_id=region, v_switch_id="vsw-app-b")
    assert (body.v_switch_id, body.vpc_id, body.zone_id, body.cidr_block) == (
        "vsw-app-b",
        "vpc-app",
        "cn-hangzhou-b",
        "172.16.2.0/24",
    )
    assert body.route_table.route_table_id == "vtb-app"
    assert body.owner_id == int(UIDS["app"])


def test_describe_nat_gateways_gives_snat_table_and_eips(sdk: SdkFactory) -> None:
    body = call(
        sdk, "describe_nat_gateways", region_id=REGION, vpc_id="vpc-app", network_type="internet"
    )
    assert body.total_count == 1
    nat = body.nat_gateways.nat_gateway[0]
    assert (nat.nat_gateway_id, nat.name, nat.vpc_id) == ("ngw-app", "app-nat", "vpc-app")
    assert (nat.network_type, nat.nat_type, nat.status) == ("internet", "Enhanced", "Available")
    assert nat.snat_table_ids.snat_table_id == ["stb-app"]
    ip = nat.ip_lists.ip_list[0]
    assert (ip.ip_address, ip.allocation_id, ip.snat_entry_enabled) == (
        "47.96.10.20",
        "eip-app-1",
        True,
    )


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({"network_type": "intranet"}, 0),
        ({"nat_gateway_id": "ngw-app"}, 1),
        ({"nat_gateway_id": "ngw-other"}, 0),
        ({"name": "app-nat"}, 1),
        ({"status": "Available"}, 1),
        ({"status": "Creating"}, 0),
    ],
    ids=["intranet", "id", "other-id", "name", "available", "creating"],
)
def test_describe_nat_gateways_filters(
    sdk: SdkFactory, filters: dict[str, Any], count: int
) -> None:
    body = call(sdk, "describe_nat_gateways", region_id=REGION, **filters)
    assert body.total_count == count
    assert len(body.nat_gateways.nat_gateway) == count


@pytest.mark.parametrize(
    "locator",
    [{"snat_table_id": "stb-app"}, {"nat_gateway_id": "ngw-app"}],
    ids=["by-table", "by-gateway"],
)
def test_describe_snat_table_entries(sdk: SdkFactory, locator: dict[str, Any]) -> None:
    body = call(
        sdk,
        "describe_snat_table_entries",
        region_id=REGION,
        source_vswitch_id="vsw-app-h",
        **locator,
    )
    assert body.total_count == 1
    entry = body.snat_table_entries.snat_table_entry[0]
    assert (entry.snat_ip, entry.source_vswitch_id, entry.source_cidr) == (
        "47.96.10.20",
        "vsw-app-h",
        "172.16.1.0/24",
    )
    assert (entry.snat_table_id, entry.nat_gateway_id, entry.status) == (
        "stb-app",
        "ngw-app",
        "Available",
    )
    assert entry.snat_entry_id.startswith("snat-")


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({"source_vswitch_id": "vsw-app-b"}, 0),
        ({"source_cidr": "172.16.1.0/24"}, 1),
        ({"snat_ip": "47.96.10.20"}, 1),
        ({"snat_ip": "1.2.3.4"}, 0),
        ({"snat_entry_id": "snat-app-1"}, 1),
    ],
    ids=["other-vswitch", "cidr", "ip", "other-ip", "entry-id"],
)
def test_describe_snat_table_entries_filters(
    sdk: SdkFactory, filters: dict[str, Any], count: int
) -> None:
    body = call(
        sdk, "describe_snat_table_entries", region_id=REGION, snat_table_id="stb-app", **filters
    )
    assert body.total_count == count


def test_describe_eip_addresses_of_the_nat(sdk: SdkFactory) -> None:
    body = call(
        sdk,
        "describe_eip_addresses",
        region_id=REGION,
        associated_instance_type="Nat",
        associated_instance_id="ngw-app",
    )
    assert body.total_count == 1
    eip = body.eip_addresses.eip_address[0]
    assert (eip.allocation_id, eip.ip_address, eip.status) == ("eip-app-1", "47.96.10.20", "InUse")
    assert (eip.instance_id, eip.instance_type, eip.instance_region_id) == (
        "ngw-app",
        "Nat",
        REGION,
    )


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({}, 1),
        ({"associated_instance_type": "EcsInstance"}, 0),
        ({"eip_address": "47.96.10.20,1.2.3.4"}, 1),
        ({"eip_address": "1.2.3.4"}, 0),
        ({"allocation_id": "eip-app-1"}, 1),
        ({"status": "Available"}, 0),
        ({"associated_instance_id": "ngw-other"}, 0),
    ],
    ids=["all", "ecs", "addresses", "other-address", "allocation", "available", "other-instance"],
)
def test_describe_eip_addresses_filters(
    sdk: SdkFactory, filters: dict[str, Any], count: int
) -> None:
    body = call(sdk, "describe_eip_addresses", region_id=REGION, **filters)
    assert body.total_count == count
    assert len(body.eip_addresses.eip_address) == count


# -- paging ----------------------------------------------------------------------------------------


def test_paging_walks_pages(sdk: SdkFactory) -> None:
    pages = [
        call(sdk, "describe_vswitches", region_id=REGION, page_size=1, page_number=n)
        for n in (1, 2, 3)
    ]
    assert [[v.v_switch_id for v in p.v_switches.v_switch] for p in pages] == [
        ["vsw-app-h"],
        ["vsw-app-b"],
        [],
    ]
    assert [(p.total_count, p.page_number, p.page_size) for p in pages] == [
        (2, 1, 1),
        (2, 2, 1),
        (2, 3, 1),
    ]


# -- errors ----------------------------------------------------------------------------------------

LISTS = [
    ("describe_vpcs", {}, 50),
    ("describe_vswitches", {}, 50),
    ("describe_nat_gateways", {}, 50),
    ("describe_snat_table_entries", {"snat_table_id": "stb-app"}, 50),
    ("describe_eip_addresses", {}, 100),
]
LIST_IDS = [action for action, _, _ in LISTS]


@pytest.mark.parametrize(("action", "kw", "max_size"), LISTS, ids=LIST_IDS)
@pytest.mark.contract_breaches
def test_region_is_required_and_checked(
    sdk: SdkFactory, action: str, kw: dict[str, Any], max_size: int
) -> None:
    assert refused(lambda: call(sdk, action, **kw)) == ("MissingParameter", 400)
    assert refused(lambda: call(sdk, action, region_id="xx-nowhere-1", **kw)) == (
        "InvalidRegionId.NotFound",
        404,
    )


@pytest.mark.parametrize(("action", "kw", "max_size"), LISTS, ids=LIST_IDS)
@pytest.mark.parametrize("bad", ["size-over-max", "size-0", "page-0"])
@pytest.mark.contract_breaches
def test_paging_out_of_range_is_400(
    sdk: SdkFactory, action: str, kw: dict[str, Any], max_size: int, bad: str
) -> None:
    assert call(sdk, action, region_id=REGION, page_size=max_size, **kw).page_size == max_size
    paging: dict[str, Any] = {
        "size-over-max": {"page_size": max_size + 1},
        "size-0": {"page_size": 0},
        "page-0": {"page_number": 0},
    }[bad]
    assert refused(lambda: call(sdk, action, region_id=REGION, **kw, **paging)) == (
        "InvalidParameter",
        400,
    )


@pytest.mark.parametrize(
    ("action", "kw", "code"),
    [
        ("describe_vpc_attribute", {"vpc_id": "vpc-nope"}, "InvalidVpcID.NotFound"),
        ("describe_vswitch_attributes", {"v_switch_id": "vsw-nope"}, "InvalidVSwitchId.NotFound"),
        (
            "describe_snat_table_entries",
            {"snat_table_id": "stb-nope"},
            "InvalidSnatTableId.NotFound",
        ),
        (
            "describe_snat_table_entries",
            {"snat_table_id": "stb-app", "nat_gateway_id": "ngw-nope"},
            "InvalidSnatTableId.NotFound",
        ),
        (
            "describe_snat_table_entries",
            {"nat_gateway_id": "ngw-nope"},
            "InvalidNatGatewayId.NotFound",
        ),
        ("describe_nat_gateways", {"vpc_id": "vpc-nope"}, "InvalidVpcId.NotFound"),
    ],
    ids=["vpc", "vswitch", "snat-table", "table-not-of-gateway", "nat-gateway", "nat-vpc"],
)
def test_unknown_ids_are_404(sdk: SdkFactory, action: str, kw: dict[str, Any], code: str) -> None:
    assert refused(lambda: call(sdk, action, region_id=REGION, **kw)) == (code, 404)


@pytest.mark.parametrize(
    ("action", "kw", "code"),
    [
        ("describe_snat_table_entries", {}, "MissingParameter"),
        ("describe_vpc_attribute", {}, "MissingParameter"),
        ("describe_vpcs", {"vpc_id": ",".join(f"vpc-{n}" for n in range(21))}, "InvalidParameter"),
        (
            "describe_nat_gateways",
            {"network_type": "public"},
            "InvalidNetworkType.ValueNotSupported",
        ),
        ("describe_nat_gateways", {"status": "Broken"}, "InvalidStatus.ValueNotSupported"),
        (
            "describe_eip_addresses",
            {"associated_instance_type": "Car"},
            "InvalidIAssociatedInstanceType.ValueNotSupported",
        ),
        ("describe_eip_addresses", {"status": "Broken"}, "InvalidStatus.ValueNotSupported"),
    ],
    ids=[
        "snat-without-table-or-gateway",
        "vpc-attribute-without-id",
        "too-many-vpc-ids",
        "nat-network-type",
        "nat-status",
        "eip-instance-type",
        "eip-status",
    ],
)
@pytest.mark.contract_breaches
def test_bad_input_is_400(sdk: SdkFactory, action: str, kw: dict[str, Any], code: str) -> None:
    assert refused(lambda: call(sdk, action, region_id=REGION, **kw)) == (code, 400)


# -- isolation and signatures ----------------------------------------------------------------------


def test_each_account_lists_only_its_own_network(sdk: SdkFactory) -> None:
    mine = call(sdk, "describe_vpcs", "registry", region_id=REGION)
    assert [v.vpc_id for v in mine.vpcs.vpc] == ["vpc-reg"]
    assert mine.vpcs.vpc[0].owner_id == int(UIDS["registry"])
    assert call(sdk, "describe_nat_gateways", "registry", region_id=REGION).total_count == 0
    assert call(sdk, "describe_eip_addresses", "registry", region_id=REGION).total_count == 0


@pytest.mark.parametrize(
    ("account", "action", "kw", "code"),
    [
        ("registry", "describe_vpc_attribute", {"vpc_id": "vpc-app"}, "InvalidVpcID.NotFound"),
        ("app", "describe_vpc_attribute", {"vpc_id": "vpc-reg"}, "InvalidVpcID.NotFound"),
        ("registry", "describe_nat_gateways", {"vpc_id": "vpc-app"}, "InvalidVpcId.NotFound"),
        (
            "app",
            "describe_vswitch_attributes",
            {"v_switch_id": "vsw-reg-h"},
            "InvalidVSwitchId.NotFound",
        ),
        (
            "registry",
            "describe_snat_table_entries",
            {"snat_table_id": "stb-app"},
            "InvalidSnatTableId.NotFound",
        ),
    ],
    ids=["registry-vpc-app", "app-vpc-reg", "registry-nat-of-vpc-app", "app-vsw-reg", "snat"],
)
def test_another_accounts_ids_are_not_found(
    sdk: SdkFactory, account: str, action: str, kw: dict[str, Any], code: str
) -> None:
    assert refused(lambda: call(sdk, action, account, region_id=REGION, **kw)) == (code, 404)


def test_legacy_v2_signature(sdk: SdkFactory) -> None:
    body = call(sdk, "describe_nat_gateways", v2=True, region_id=REGION, vpc_id="vpc-app")
    assert body.nat_gateways.nat_gateway[0].ip_lists.ip_list[0].ip_address == "47.96.10.20"
    entries = call(
        sdk, "describe_snat_table_entries", v2=True, region_id=REGION, snat_table_id="stb-app"
    )
    assert entries.snat_table_entries.snat_table_entry[0].snat_ip == "47.96.10.20"
    assert refused(
        lambda: call(sdk, "describe_vpc_attribute", v2=True, region_id=REGION, vpc_id="vpc-reg")
    ) == ("InvalidVpcID.NotFound", 404)


# -- a world with CEN (also across regions), a shared vSwitch and an SNAT entry of two EIPs --------


@pytest.fixture(scope="module")
def cen_sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkFactory]:
    world = yaml.safe_load(bundled_world_path().read_text(encoding="utf-8"))
    region = world["regions"][REGION]
    region["cen"] = [["vpc-app", "vpc-reg"]]
    nat = region["vpcs"][0]["nat_gateways"][0]
    nat["eips"].append({"id": "eip-app-2", "ip": "47.96.10.21"})
    nat["snat"].append({"source_cidr": "172.16.2.0/24", "ip": "47.96.10.20, 47.96.10.21"})
    region["vpcs"][0]["vswitches"][1]["shared_with"] = ["registry"]
    world["regions"]["cn-shanghai"] = {
        "vpcs": [{"id": "vpc-sh", "account": "app", "cidr": "10.0.0.0/8"}],
        "cen": [["vpc-sh", "vpc-reg"]],
    }
    path: Path = tmp_path_factory.mktemp("world") / "cen.yaml"
    path.write_text(yaml.safe_dump(world), encoding="utf-8")
    with SandboxProcess(world=path) as process:
        yield SdkFactory(process.endpoint)


def test_cen_pairs_show_on_both_vpcs(cen_sdk: SdkFactory) -> None:
    for account, vpc_id in (("app", "vpc-app"), ("registry", "vpc-reg")):
        body = call(cen_sdk, "describe_vpc_attribute", account, region_id=REGION, vpc_id=vpc_id)
        cen = body.associated_cens.associated_cen[0]
        assert (cen.cen_id, cen.cen_status) == ("cen-vpc-app-vpc-reg", "Attached")
        assert cen.cen_owner_id == int(UIDS["app"])
        listed = call(cen_sdk, "describe_vpcs", account, region_id=REGION)
        assert listed.vpcs.vpc[0].cen_status == "Attached"


def test_cidr_sourced_snat_entry(cen_sdk: SdkFactory) -> None:
    body = call(
        cen_sdk,
        "describe_snat_table_entries",
        region_id=REGION,
        nat_gateway_id="ngw-app",
        source_cidr="172.16.2.0/24",
    )
    entry = body.snat_table_entries.snat_table_entry[0]
    assert (entry.snat_entry_id, entry.source_vswitch_id, entry.snat_ip) == (
        "snat-app-2",
        "",
        "47.96.10.20,47.96.10.21",
    )
    assert body.total_count == 1


def test_an_snat_entry_of_several_eips_uses_each(cen_sdk: SdkFactory) -> None:
    """`SnatIp` holds an SNAT address pool comma-separated; the NAT marks each EIP as used."""
    body = call(cen_sdk, "describe_nat_gateways", region_id=REGION, vpc_id="vpc-app")
    ips = body.nat_gateways.nat_gateway[0].ip_lists.ip_list
    assert {(ip.ip_address, ip.snat_entry_enabled, ip.using_status) for ip in ips} == {
        ("47.96.10.20", True, "UsedBySnatTable"),
        ("47.96.10.21", True, "UsedBySnatTable"),
    }


def test_a_shared_vswitch_is_seen_by_the_account_it_is_shared_with(cen_sdk: SdkFactory) -> None:
    """VPC sharing: the participant sees the shared vSwitch (ShareType Shared, the owner's
    OwnerId), the owner sees it as Sharing, and an unshared vSwitch stays invisible."""
    mine = call(cen_sdk, "describe_vswitch_attributes", region_id=REGION, v_switch_id="vsw-app-b")
    assert mine.share_type == "Sharing"
    seen = call(
        cen_sdk,
        "describe_vswitch_attributes",
        "registry",
        region_id=REGION,
        v_switch_id="vsw-app-b",
    )
    assert (seen.vpc_id, seen.share_type, seen.owner_id) == ("vpc-app", "Shared", int(UIDS["app"]))
    listed = call(cen_sdk, "describe_vswitches", "registry", region_id=REGION, vpc_id="vpc-app")
    assert [(v.v_switch_id, v.share_type) for v in listed.v_switches.v_switch] == [
        ("vsw-app-b", "Shared")
    ]
    assert refused(
        lambda: call(
            cen_sdk,
            "describe_vswitch_attributes",
            "registry",
            region_id=REGION,
            v_switch_id="vsw-app-h",
        )
    ) == ("InvalidVSwitchId.NotFound", 404)


def test_cen_across_regions_shows_on_both_vpcs(cen_sdk: SdkFactory) -> None:
    shanghai = call(cen_sdk, "describe_vpc_attribute", region_id="cn-shanghai", vpc_id="vpc-sh")
    assert [c.cen_id for c in shanghai.associated_cens.associated_cen] == ["cen-vpc-sh-vpc-reg"]
    registry = call(
        cen_sdk, "describe_vpc_attribute", "registry", region_id=REGION, vpc_id="vpc-reg"
    )
    assert [c.cen_id for c in registry.associated_cens.associated_cen] == [
        "cen-vpc-app-vpc-reg",
        "cen-vpc-sh-vpc-reg",
    ]
