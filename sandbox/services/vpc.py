"""Placeholder: VPC handlers are being written."""

from __future__ import annotations

from typing import Any

from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.store import Tx
from sandbox.world import World


def seed(tx: Tx, world: World) -> None:
    """Nothing yet."""


def aliyuncs(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_eip_addresses(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_nat_gateways(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_snat_table_entries(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_vpc_attribute(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_vpcs(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_vswitch_attributes(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def describe_vswitches(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")
