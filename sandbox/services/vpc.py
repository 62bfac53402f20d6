"""VPC 2016-04-28: the read-only network discovery the deploy needs (reference section 5).

VPCs, vSwitches, NAT gateways with their SNAT entries, and EIPs come from the world file and are
stored as the API shows them, so handlers only look up, filter and page. A caller sees only its own
account's resources: another account's VPC id is simply not found. The exception is VPC sharing:
a vSwitch shared with an account (world `shared_with`) is listed to it too, with `ShareType`
`Shared` (its owner sees `Sharing`; DescribeVSwitchAttributes' ShareType values).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Collection
from typing import Any

from sandbox.call import Call, iso_time
from sandbox.errors import ApiError, invalid_parameter
from sandbox.store import Doc, Scope, Tx
from sandbox.world import NatGateway, World
from sandbox.world import Vpc as WorldVpc

VPC = "vpc"
VSWITCH = "vswitch"
NAT = "nat_gateway"
SNAT = "snat_entry"
EIP = "eip"
VSWITCH_SHARE = "vswitch_share"
"""In a participant's scope: a vSwitch shared with it, pointing at the owner's document."""

_LIST_ONLY = ("NatGatewayIds", "RouterTableIds", "CenStatus")
"""VPC fields DescribeVpcs shows and DescribeVpcAttribute does not."""
_ATTRIBUTE_ONLY = ("AssociatedCens",)

_NAT_STATUSES = ("Creating", "Available", "Modifying", "Deleting", "Converting")
_EIP_STATUSES = ("Associating", "Unassociating", "InUse", "Available")
_EIP_INSTANCE_TYPES = ("EcsInstance", "SlbInstance", "Nat", "HaVip", "NetworkInterface")


# -- seeding ---------------------------------------------------------------------------------------


def _suffix(rid: str) -> str:
    """`ngw-app` -> `app`: derived ids (`stb-app`, `vrt-app`) stay readable and unique."""
    return rid.split("-", 1)[-1]


def seed(tx: Tx, world: World) -> None:
    """Store each region's VPCs under their owner's scope.

    The APIs are read-only, so cross references (VSwitchIds, SNAT tables, CENs) are fixed here.
    """
    created = iso_time(time.time())
    owners = {
        v.id: world.account(v.account).uid for region in world.regions.values() for v in region.vpcs
    }
    cens = world.cen_pairs()
    for region_id, region in world.regions.items():
        for vpc in region.vpcs:
            scope = Scope(owners[vpc.id], region_id)
            tx.put(scope, VPC, vpc.id, _vpc_doc(vpc, cens, owners, scope, created))
            for vsw in vpc.vswitches:
                for name in vsw.shared_with:
                    participant = Scope(world.account(name).uid, region_id)
                    share = {"VSwitchId": vsw.id, "owner": scope.account}
                    tx.put(participant, VSWITCH_SHARE, vsw.id, share)
                network = ipaddress.IPv4Network(vsw.cidr)
                tx.put(
                    scope,
                    VSWITCH,
                    vsw.id,
                    {
                        "VSwitchId": vsw.id,
                        "VSwitchName": vsw.name,
                        "VpcId": vpc.id,
                        "ZoneId": vsw.zone,
                        "CidrBlock": vsw.cidr,
                        "Status": "Available",
                        # Alibaba reserves the first and the last three addresses of a vSwitch.
                        "AvailableIpAddressCount": max(network.num_addresses - 4, 0),
                        "RouteTable": {
                            "RouteTableId": f"vtb-{_suffix(vpc.id)}",
                            "RouteTableType": "System",
                        },
                        "IsDefault": False,
                        "NetworkAclId": "",
                        "ShareType": "Sharing" if vsw.shared_with else "",
                        "Description": "",
                        "CreationTime": created,
                        "OwnerId": int(scope.account),
                    },
                )
            for nat in vpc.nat_gateways:
                _seed_nat(tx, scope, vpc, nat, created)


def _vpc_doc(
    vpc: WorldVpc, pairs: list[tuple[str, str]], owners: dict[str, str], scope: Scope, created: str
) -> Doc:
    cens = [
        {"CenId": f"cen-{a}-{b}", "CenOwnerId": int(owners[a]), "CenStatus": "Attached"}
        for a, b in pairs
        if vpc.id in (a, b)
    ]
    return {
        "VpcId": vpc.id,
        "VpcName": vpc.name,
        "RegionId": scope.region,
        "Status": "Available",
        "CidrBlock": vpc.cidr,
        "IsDefault": False,
        "Description": "",
        "CreationTime": created,
        "OwnerId": int(scope.account),
        "VRouterId": f"vrt-{_suffix(vpc.id)}",
        "VSwitchIds": {"VSwitchId": [v.id for v in vpc.vswitches]},
        "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
        "UserCidrs": {"UserCidr": []},
        "NatGatewayIds": {"NatGatewayIds": [n.id for n in vpc.nat_gateways]},
        "RouterTableIds": {"RouterTableIds": [f"vtb-{_suffix(vpc.id)}"]},
        "CenStatus": "Attached" if cens else "Detached",
        "AssociatedCens": {"AssociatedCen": cens},
    }


def _seed_nat(tx: Tx, scope: Scope, vpc: WorldVpc, nat: NatGateway, created: str) -> None:
    """An internet NAT gateway, its SNAT table entries and the EIPs bound to it."""
    suffix = _suffix(nat.id)
    table = f"stb-{suffix}"
    snat_ips = {ip for entry in nat.snat for ip in entry.ips}
    cidrs = {v.id: v.cidr for v in vpc.vswitches}
    home = vpc.vswitches[0] if vpc.vswitches else None
    tx.put(
        scope,
        NAT,
        nat.id,
        {
            "NatGatewayId": nat.id,
            "Name": nat.name,
            "Description": "",
            "VpcId": vpc.id,
            "RegionId": scope.region,
            "NatType": "Enhanced",
            "NetworkType": "internet",
            "Status": "Available",
            "BusinessStatus": "Normal",
            "InstanceChargeType": "PostPaid",
            "InternetChargeType": "PayByLcu",
            "EipBindMode": "MULTI_BINDED",
            "CreationTime": created,
            "SnatTableIds": {"SnatTableId": [table]},
            "ForwardTableIds": {"ForwardTableId": [f"ftb-{suffix}"]},
            "IpLists": {
                "IpList": [
                    {
                        "AllocationId": eip.id,
                        "IpAddress": eip.ip,
                        "PrivateIpAddress": "",
                        "SnatEntryEnabled": eip.ip in snat_ips,
                        "UsingStatus": "UsedBySnatTable" if eip.ip in snat_ips else "Idle",
                    }
                    for eip in nat.eips
                ]
            },
            "NatGatewayPrivateInfo": {
                "VswitchId": home.id if home else "",
                "IzNo": home.zone if home else "",
                "EniInstanceId": f"eni-{suffix}",
            },
        },
    )
    for number, entry in enumerate(nat.snat, start=1):
        entry_id = f"snat-{suffix}-{number}"
        source_cidr = entry.source_cidr or cidrs[entry.source_vswitch or ""]
        tx.put(
            scope,
            SNAT,
            entry_id,
            {
                "SnatEntryId": entry_id,
                "SnatEntryName": "",
                "SnatTableId": table,
                "NatGatewayId": nat.id,
                "SnatIp": entry.ip,
                "SourceVSwitchId": entry.source_vswitch or "",
                "SourceCIDR": source_cidr,
                "Status": "Available",
                "EipAffinity": "0",
                "NetworkInterfaceId": "",
            },
        )
    for eip in nat.eips:
        tx.put(
            scope,
            EIP,
            eip.id,
            {
                "AllocationId": eip.id,
                "IpAddress": eip.ip,
                "Name": "",
                "Description": "",
                "RegionId": scope.region,
                "InstanceId": nat.id,
                "InstanceType": "Nat",
                "InstanceRegionId": scope.region,
                "VpcId": vpc.id,
                "Status": "InUse",
                "Bandwidth": "5",
                "ChargeType": "PostPaid",
                "InternetChargeType": "PayByTraffic",
                "ISP": "BGP",
                "Mode": "NAT",
                "Netmode": "public",
                "PrivateIpAddress": "",
                "AllocationTime": created,
                "BusinessStatus": "Normal",
            },
        )


# -- shared request handling -----------------------------------------------------------------------


def _not_found(code: str, what: str) -> ApiError:
    return ApiError(404, code, f"Specified {what} does not exist.")


def _enum(call: Call, name: str, options: tuple[str, ...], code: str = "") -> str | None:
    """An optional filter of documented values; anything else is a 400, not an empty list."""
    value = call.params.optional(name)
    if value is not None and value not in options:
        raise ApiError(
            400,
            code or f"Invalid{name}.ValueNotSupported",
            f"The specified value of {name} is not supported.",
        )
    return value


def _id_set(call: Call, name: str, limit: int) -> set[str] | None:
    """A comma-separated id filter (e.g. `VpcId=vpc-a,vpc-b`) of at most `limit` values."""
    value = call.params.optional(name)
    if value is None:
        return None
    ids = {part.strip() for part in value.split(",") if part.strip()}
    if len(ids) > limit:
        raise invalid_parameter(name, f"at most {limit} values may be given")
    return ids


def _optional_flag(call: Call, name: str) -> bool | None:
    return call.params.flag(name) if call.params.optional(name) else None


def _where(docs: list[Doc], **wanted: str | bool | set[str] | None) -> list[Doc]:
    """Keep documents whose fields match every filter given; a set means any of its values."""
    for field, value in wanted.items():
        if value is None:
            continue
        allowed: Collection[object] = value if isinstance(value, set) else (value,)
        docs = [d for d in docs if d.get(field) in allowed]
    return docs


def _page(call: Call, docs: list[Doc], wrapper: str, item: str) -> dict[str, Any]:
    """PageNumber/PageSize paging, the list wrapped the RPC way: `{"Vpcs": {"Vpc": [...]}}`.
    Their ranges (PageSize 1..50, 1..100 for EIPs) were checked against the metadata."""
    number = call.params.integer("PageNumber", default=1)
    size = call.params.integer("PageSize", default=10)
    start = (number - 1) * size
    return {
        "TotalCount": len(docs),
        "PageNumber": number,
        "PageSize": size,
        wrapper: {item: docs[start : start + size]},
    }


def _without(doc: Doc, keys: tuple[str, ...]) -> Doc:
    return {k: v for k, v in doc.items() if k not in keys}


# -- handlers --------------------------------------------------------------------------------------


def describe_vpcs(call: Call) -> dict[str, Any]:
    docs = _where(
        call.tx.all(call.scope(call.region()), VPC),
        VpcId=_id_set(call, "VpcId", 20),
        VpcName=call.params.optional("VpcName"),
        IsDefault=_optional_flag(call, "IsDefault"),
    )
    return _page(call, [_without(d, _ATTRIBUTE_ONLY) for d in docs], "Vpcs", "Vpc")


def describe_vpc_attribute(call: Call) -> dict[str, Any]:
    """An unknown VPC is `InvalidVpcID.NotFound` (capital ID), one of the two codes VPC reads
    document for it (the other is `Forbidden.VpcNotFound`; Terraform's provider treats exactly
    these two as "not found", terraform-provider-alicloud `alicloud/service_alicloud_vpc.go`,
    `DescribeVpc`); the NAT gateway APIs' `InvalidVpcId.NotFound` is another code."""
    scope = call.scope(call.region())
    doc = call.tx.get(scope, VPC, call.params.text("VpcId"))
    if doc is None:
        raise _not_found("InvalidVpcID.NotFound", "VPC")
    return _without(doc, _LIST_ONLY)


def _vswitches(call: Call, region: str) -> list[Doc]:
    """The caller's vSwitches in a region, and those shared with it (ShareType `Shared`)."""
    scope = call.scope(region)
    docs = call.tx.all(scope, VSWITCH)
    for share in call.tx.all(scope, VSWITCH_SHARE):
        shared = _shared_vswitch(call, region, str(share["VSwitchId"]))
        if shared is not None:
            docs.append(shared)
    return docs


def _shared_vswitch(call: Call, region: str, vsw_id: str) -> Doc | None:
    share = call.tx.get(call.scope(region), VSWITCH_SHARE, vsw_id)
    if share is None:
        return None
    doc = call.tx.get(Scope(str(share["owner"]), region), VSWITCH, vsw_id)
    return None if doc is None else {**doc, "ShareType": "Shared"}


def describe_vswitches(call: Call) -> dict[str, Any]:
    """RegionId may be left out when VpcId is given (the SDK model says one of the two); the
    endpoint's region is searched either way (sandbox/regions.py)."""
    vpc_id = call.params.optional("VpcId")
    if not vpc_id:
        call.params.text("RegionId", required=True)
    docs = _where(
        _vswitches(call, call.region()),
        VpcId=vpc_id,
        VSwitchId=call.params.optional("VSwitchId"),
        ZoneId=call.params.optional("ZoneId"),
        VSwitchName=call.params.optional("VSwitchName"),
        IsDefault=_optional_flag(call, "IsDefault"),
    )
    return _page(call, docs, "VSwitches", "VSwitch")


def describe_vswitch_attributes(call: Call) -> dict[str, Any]:
    """RegionId is optional here: the endpoint's region is searched (sandbox/regions.py)."""
    vsw_id = call.params.text("VSwitchId")
    region = call.region()
    doc = call.tx.get(call.scope(region), VSWITCH, vsw_id) or _shared_vswitch(call, region, vsw_id)
    if doc is not None:
        return doc
    raise _not_found("InvalidVSwitchId.NotFound", "vSwitch")


def describe_nat_gateways(call: Call) -> dict[str, Any]:
    scope = call.scope(call.region())
    vpc_id = call.params.optional("VpcId")
    if vpc_id is not None and call.tx.get(scope, VPC, vpc_id) is None:
        raise _not_found("InvalidVpcId.NotFound", "VPC")
    docs = _where(
        call.tx.all(scope, NAT),
        VpcId=vpc_id,
        NatGatewayId=call.params.optional("NatGatewayId"),
        Name=call.params.optional("Name"),
        NetworkType=_enum(call, "NetworkType", ("internet", "intranet")),
        Status=_enum(call, "Status", _NAT_STATUSES),
    )
    return _page(call, docs, "NatGateways", "NatGateway")


def describe_snat_table_entries(call: Call) -> dict[str, Any]:
    scope = call.scope(call.region())
    table_id = call.params.optional("SnatTableId")
    nat_id = call.params.optional("NatGatewayId")
    if table_id is None and nat_id is None:
        raise ApiError(
            400,
            "MissingParameter",
            'The input parameter "SnatTableId" or "NatGatewayId" that is mandatory for '
            "processing this request is not supplied.",
        )
    nats = _where(call.tx.all(scope, NAT), NatGatewayId=nat_id)
    if table_id is not None:
        nats = [n for n in nats if table_id in n["SnatTableIds"]["SnatTableId"]]
    if not nats:
        if table_id is not None:
            raise _not_found("InvalidSnatTableId.NotFound", "SNAT table")
        raise _not_found("InvalidNatGatewayId.NotFound", "NAT gateway")
    docs = _where(
        call.tx.all(scope, SNAT),
        NatGatewayId=nats[0]["NatGatewayId"],
        SnatEntryId=call.params.optional("SnatEntryId"),
        SnatEntryName=call.params.optional("SnatEntryName"),
        SnatIp=call.params.optional("SnatIp"),
        SourceCIDR=call.params.optional("SourceCIDR"),
        SourceVSwitchId=call.params.optional("SourceVSwitchId"),
    )
    return _page(call, docs, "SnatTableEntries", "SnatTableEntry")


def describe_eip_addresses(call: Call) -> dict[str, Any]:
    """AssociatedInstanceType filters only when given (the docs' EcsInstance default would hide
    the NAT-bound EIPs that every world has)."""
    docs = _where(
        call.tx.all(call.scope(call.region()), EIP),
        IpAddress=_id_set(call, "EipAddress", 50),
        AllocationId=_id_set(call, "AllocationId", 50),
        InstanceType=_enum(
            call,
            "AssociatedInstanceType",
            _EIP_INSTANCE_TYPES,
            code="InvalidIAssociatedInstanceType.ValueNotSupported",
        ),
        InstanceId=call.params.optional("AssociatedInstanceId"),
        Status=_enum(call, "Status", _EIP_STATUSES),
    )
    return _page(call, docs, "EipAddresses", "EipAddress")
