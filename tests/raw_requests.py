"""Signed requests built by hand, for tests that send what no SDK would (odd dates, nonces,
bodies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sandbox import signing
from tests.conftest import KEYS


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
