"""The three Alibaba Cloud request signatures, computed from what was received.

- ACS3-HMAC-SHA256 (SDK default, RPC and ROA), reference section 1.3;
- RPC HMAC-SHA1 in the query string (`signature_algorithm='v2'`), section 1.4;
- ROA `Authorization: acs AK:signature` HMAC-SHA1 (`signature_algorithm='v2'`), section 1.4.

Only pure functions here: `auth.py` decides what a mismatch means.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import quote

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _rfc3986(value: str) -> str:
    return quote(value, safe="~")


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def acs3_signature(
    *,
    secret: str,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """Hex HMAC-SHA256 of the ACS3 string to sign. `headers` keys are lowercase."""
    canonical_query = "&".join(f"{k}={_rfc3986(v)}" for k, v in sorted(query))
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    string_to_sign = f"{ACS3}\n{sha256_hex(canonical_request.encode())}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def rpc_v1_signature(*, secret: str, method: str, params: Sequence[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 over the query and form parameters (without `Signature`)."""
    canonical = "&".join(
        f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in sorted(params) if k != "Signature"
    )
    string_to_sign = f"{method.upper()}&{_rfc3986('/')}&{_rfc3986(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def roa_v1_signature(
    *,
    secret: str,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
) -> str:
    """Base64 HMAC-SHA1 of the ROA string to sign. `headers` keys are lowercase."""
    parts = [
        method.upper(),
        headers.get("accept", ""),
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
    ]
    acs_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-acs-"))
    )
    resource = path
    if query:
        resource += "?" + "&".join(k if v == "" else f"{k}={v}" for k, v in sorted(query))
    string_to_sign = "\n".join(parts) + "\n" + acs_headers + resource
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
