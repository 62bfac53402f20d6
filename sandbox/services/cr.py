"""Placeholder: CR handlers are being written."""

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


def create_instance_endpoint_acl_policy(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def create_instance_vpc_endpoint_linked_vpc(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def delete_instance_endpoint_acl_policy(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def delete_instance_vpc_endpoint_linked_vpc(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_authorization_token(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_instance(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_instance_endpoint(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_instance_vpc_endpoint(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_repo_tag(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def get_repository(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def list_instance(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def list_instance_endpoint(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def list_repo_tag(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def list_repository(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")


def update_instance_endpoint_status(call: Call) -> dict[str, Any]:
    raise ApiError(501, "NotImplemented", "not yet")
