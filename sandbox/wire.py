"""What arrived on the wire: raw request parts, and how the scheme, version and action are read.

ACS3 requests carry the action and version in `x-acs-action` / `x-acs-version`; legacy RPC requests
carry them in the query (`Action`, `Version`); legacy ROA requests in the same headers as ACS3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal
from urllib.parse import parse_qsl

from sandbox.errors import ApiError

Scheme = Literal["acs3", "rpc-v1", "roa-v1", "anonymous"]

RPC_COMMON_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "Timestamp",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureType",
        "AccessKeyId",
        "Signature",
        "SecurityToken",
        "RegionId_",
    }
)

MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass
class RawRequest:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    """Lowercased names."""
    body: bytes = b""
    received_at: float = 0.0
    client_host: str = field(default="")

    @cached_property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return []
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "InvalidParameter", "The request body is not UTF-8.") from None
        return parse_qsl(text, keep_blank_values=True)

    def json_body(self) -> dict[str, object]:
        if not self.body or not self.headers.get("content-type", "").startswith("application/json"):
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, RecursionError):
            raise ApiError(400, "InvalidParameter", "The request body is not valid JSON.") from None
        return value if isinstance(value, dict) else {}

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


@dataclass(frozen=True)
class Identified:
    scheme: Scheme
    version: str
    action: str


def unsigned() -> ApiError:
    """An unsigned request to an action that needs a signature (every one but the anonymous)."""
    return ApiError(
        400,
        "IncompleteSignature",
        "The request signature does not conform to Aliyun standards: no Authorization.",
    )


def identify(raw: RawRequest) -> Identified:
    """Which signature scheme, API version and action a request claims; `anonymous` when it is
    unsigned: a legacy RPC query without Signature, as the STS SDK (`auth_type='Anonymous'`,
    `do_rpcrequest`) and `alibabacloud-credentials` send AssumeRoleWithOIDC, or ACS3 headers
    without Authorization."""
    auth = raw.authorization
    if auth.startswith("ACS3-"):
        scheme: Scheme = "acs3"
    elif auth.startswith("acs "):
        scheme = "roa-v1"
    elif any(k == "Signature" for k, _ in raw.query):
        scheme = "rpc-v1"
    else:
        scheme = "anonymous"
    if scheme == "rpc-v1" or (scheme == "anonymous" and "x-acs-action" not in raw.headers):
        query = dict(raw.query)
        version, action = query.get("Version", ""), query.get("Action", "")
    else:
        version = raw.headers.get("x-acs-version", "")
        action = raw.headers.get("x-acs-action", "")
    if scheme == "anonymous" and not (version and action):
        raise unsigned()
    if not version:
        raise ApiError(400, "MissingVersion", "Version is mandatory for this request.")
    return Identified(scheme, version, action)
