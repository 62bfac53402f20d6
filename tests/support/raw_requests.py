"""Signed requests built by hand, for tests that send what no SDK would (odd dates, nonces,
bodies)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote, urlencode, urlsplit

import httpx

from sandbox import signing
from tests.support.clients import KEYS


def signed_headers(
    url: str,
    *,
    body: bytes = b"",
    account: str = "app",
    action: str = "GetCallerIdentity",
    version: str = "2015-04-01",
    date: str | None = None,
    nonce: str | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """Correct ACS3 headers for a POST / with `body`, whatever date and nonce asked for."""
    key_id, secret = KEYS[account]
    headers = {
        "host": urlsplit(url).netloc,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex if nonce is None else nonce,
        "x-acs-content-sha256": signing.sha256_hex(body),
    }
    if content_type:
        headers["content-type"] = content_type
    names = sorted(headers)
    signature = signing.acs3_signature(
        secret=secret,
        method="POST",
        path="/",
        query=[],
        headers=headers,
        signed_headers=names,
        payload_hash=headers["x-acs-content-sha256"],
    )
    headers["authorization"] = (
        f"{signing.ACS3} Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return headers


def legacy_roa_headers(
    url: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    *,
    account: str = "app",
    method: str = "GET",
    action: str = "DescribeNamespaceList",
    version: str = "2019-05-06",
    nonce: str | None = None,
) -> dict[str, str]:
    """ROA v1 headers as aliyun-python-sdk-core (2.16.1) signs them: `Date`, `Accept`, the
    signature method and version and `x-acs-*`, and no `x-acs-signature-nonce` unless one is given
    (`aliyunsdkcore/auth/composer/roa_signature_composer.py`, `refresh_sign_parameters`)."""
    key_id, secret = KEYS[account]
    headers = {
        "host": urlsplit(url).netloc,
        "date": formatdate(usegmt=True),
        "accept": "application/json",
        "x-acs-signature-method": "HMAC-SHA1",
        "x-acs-signature-version": "1.0",
        "x-acs-version": version,
        "x-acs-action": action,
        "x-acs-region-id": "cn-hangzhou",
    }
    if nonce is not None:
        headers["x-acs-signature-nonce"] = nonce
    signature = signing.roa_v1_signature(
        secret=secret, method=method, path=path, query=query, headers=headers
    )
    headers["authorization"] = f"acs {key_id}:{signature}"
    return headers


def send_acs3(
    url: str,
    *,
    action: str,
    version: str,
    method: str = "POST",
    path: str = "/",
    query: Sequence[tuple[str, str]] = (),
    form: Sequence[tuple[str, str]] = (),
    account: str = "app",
    region: str = "cn-hangzhou",
) -> httpx.Response:
    """Any request, signed with ACS3 as the SDK signs it: query, form body, method and path as
    given (what no SDK sends included), to the region named by `x-sandbox-region`."""
    key_id, secret = KEYS[account]
    body = urlencode(list(form)).encode()
    headers = {
        "host": urlsplit(url).netloc,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": signing.sha256_hex(body),
        "x-sandbox-region": region,
    }
    if form:
        headers["content-type"] = "application/x-www-form-urlencoded"
    names = sorted(headers)
    signature = signing.acs3_signature(
        secret=secret,
        method=method,
        path=path,
        query=list(query),
        headers=headers,
        signed_headers=names,
        payload_hash=headers["x-acs-content-sha256"],
    )
    headers["authorization"] = (
        f"{signing.ACS3} Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"
    )
    target = f"{url}{path}" + (f"?{urlencode(list(query), quote_via=quote)}" if query else "")
    return httpx.request(method, target, headers=headers, content=body, trust_env=False, timeout=30)
