"""Who is calling: check signature, clock, nonce and STS token, then name the caller.

Access keys live in the store (kind `access_key`, global scope): the world's long-term keys, and
the temporary keys that STS AssumeRole mints. A request is refused with the gateway's codes:
unknown key, signature mismatch (including a body whose SHA-256 differs from the signed one),
a date more than 15 minutes off, a nonce seen before, a missing or expired security token.

Every scheme's nonce is checked for reuse when sent. Only legacy ROA (v1) requests may leave it
out: the legacy SDK, aliyun-python-sdk-core, signs them with `Date`, `Accept` and its
`x-acs-signature-method`/`-version` headers but no `x-acs-signature-nonce`
(`aliyunsdkcore/auth/composer/roa_signature_composer.py`, `refresh_sign_parameters`, 2.16.1), and
the cloud serves such requests, although SAE's header table lists the nonce as required
(AlibabaCloudDocs/sae `cn.zh-CN/API参考/公共请求和返回头.md`). Their replay protection is then the
15-minute window of `Date` alone.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from sandbox import chosen_codes, signing
from sandbox.clock import Clock
from sandbox.errors import ApiError
from sandbox.policy import Principal
from sandbox.store import Scope, Tx
from sandbox.wire import Identified, RawRequest

MAX_CLOCK_SKEW_SECONDS = 15 * 60
KEY_SCOPE = Scope(account="")
KEY_KIND = "access_key"


@dataclass(frozen=True)
class Caller:
    """The authenticated identity a request acts as."""

    account: str
    """Account uid."""
    account_name: str
    access_key_id: str
    identity_type: str
    """`Account` for the world's root keys, `RAMUser` for a RAM user's keys, `AssumedRoleUser`
    for STS keys (GetCallerIdentity's IdentityType values), `Anonymous` unsigned."""
    user_name: str = ""
    user_id: str = ""
    role_name: str = ""
    role_id: str = ""
    session_name: str = ""
    session_policy: str | None = None
    """The inline Policy given to AssumeRole, which narrows the role's permissions."""

    @property
    def is_root(self) -> bool:
        """The account's own keys: every action allowed, as the cloud grants its root account."""
        return self.identity_type == "Account"

    @property
    def arn(self) -> str:
        if self.identity_type == "AssumedRoleUser":
            return f"acs:ram::{self.account}:role/{self.role_name}/{self.session_name}"
        if self.identity_type == "RAMUser":
            return f"acs:ram::{self.account}:user/{self.user_name}"
        return f"acs:ram::{self.account}:root"

    @property
    def principal(self) -> Principal:
        if self.identity_type == "AssumedRoleUser":
            return Principal(self.account, "role", self.role_name)
        if self.identity_type == "RAMUser":
            return Principal(self.account, "user", self.user_name)
        return Principal(self.account, "account")


ANONYMOUS = Caller(account="", account_name="", access_key_id="", identity_type="Anonymous")
"""The caller of an action served without a signature (`Route.anonymous`)."""


def _error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message)


def _signature_mismatch(detail: str) -> ApiError:
    return _error(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. {detail}".strip(),
    )


def _parse_iso(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Authenticator:
    """Stateful only for nonces, which are remembered for the clock-skew window."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, raw: RawRequest, ident: Identified, tx: Tx) -> Caller:
        if ident.scheme == "acs3":
            key_id, nonce, stamp, token = self._check_acs3(raw, tx)
        elif ident.scheme == "rpc-v1":
            key_id, nonce, stamp, token = self._check_rpc_v1(raw, tx)
        else:
            key_id, nonce, stamp, token = self._check_roa_v1(raw, tx)
        self._check_clock(stamp)
        caller = self._check_token(tx, key_id, token)
        if nonce or ident.scheme != "roa-v1":
            self._remember_nonce(key_id, nonce)
        return caller

    # -- the three schemes -------------------------------------------------------------------

    def _secret(self, tx: Tx, key_id: str) -> str:
        doc = tx.get(KEY_SCOPE, KEY_KIND, key_id) if key_id else None
        if doc is None:
            raise _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return str(doc["secret"])

    def _check_acs3(self, raw: RawRequest, tx: Tx) -> tuple[str, str, datetime | None, str]:
        algorithm, _, rest = raw.authorization.partition(" ")
        if algorithm != signing.ACS3:
            raise _error(
                400, "InvalidSignatureMethod", f"Unsupported signature algorithm {algorithm}."
            )
        try:
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            key_id, signed, signature = (
                parts["Credential"],
                parts["SignedHeaders"],
                parts["Signature"],
            )
        except (KeyError, ValueError):
            raise _error(
                400, "IncompleteSignature", "The Authorization header is not well formed."
            ) from None
        secret = self._secret(tx, key_id)
        signed_headers = [h for h in signed.split(";") if h]
        required = {
            "host",
            "x-acs-action",
            "x-acs-content-sha256",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-version",
        }
        present = {
            h for h in raw.headers if h.startswith("x-acs-") or h in ("host", "content-type")
        }
        missing = sorted((required | present) - set(signed_headers))
        if missing:
            raise _error(400, "IncompleteSignature", f"Header {missing[0]} must be signed.")
        unknown = [h for h in signed_headers if h not in raw.headers]
        if unknown:
            raise _error(400, "IncompleteSignature", f"Signed header {unknown[0]} is absent.")
        claimed_hash = raw.headers.get("x-acs-content-sha256", "")
        if claimed_hash != signing.sha256_hex(raw.body):
            raise _signature_mismatch("The x-acs-content-sha256 header is not the body's SHA-256.")
        expected = signing.acs3_signature(
            secret=secret,
            method=raw.method,
            path=raw.path,
            query=raw.query,
            headers=raw.headers,
            signed_headers=signed_headers,
            payload_hash=claimed_hash,
        )
        if not _constant_time_equal(expected, signature):
            raise _signature_mismatch("")
        stamp = _parse_iso(raw.headers.get("x-acs-date", ""))
        return (
            key_id,
            raw.headers.get("x-acs-signature-nonce", ""),
            stamp,
            raw.headers.get("x-acs-security-token", ""),
        )

    def _check_rpc_v1(self, raw: RawRequest, tx: Tx) -> tuple[str, str, datetime | None, str]:
        params = [*raw.query, *raw.form]
        values = dict(params)
        if values.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise _error(400, "InvalidSignatureMethod", "Only HMAC-SHA1 is supported.")
        key_id = values.get("AccessKeyId", "")
        secret = self._secret(tx, key_id)
        expected = signing.rpc_v1_signature(secret=secret, method=raw.method, params=params)
        if not _constant_time_equal(expected, values.get("Signature", "")):
            raise _signature_mismatch("")
        stamp = _parse_iso(values.get("Timestamp", ""))
        return key_id, values.get("SignatureNonce", ""), stamp, values.get("SecurityToken", "")

    def _check_roa_v1(self, raw: RawRequest, tx: Tx) -> tuple[str, str, datetime | None, str]:
        credential = raw.authorization[len("acs ") :]
        key_id, sep, signature = credential.rpartition(":")
        if not sep or not key_id:
            raise _error(400, "IncompleteSignature", "The Authorization header is not well formed.")
        secret = self._secret(tx, key_id)
        expected = signing.roa_v1_signature(
            secret=secret, method=raw.method, path=raw.path, query=raw.query, headers=raw.headers
        )
        if not _constant_time_equal(expected, signature):
            raise _signature_mismatch("")
        stamp = _parse_http_date(raw.headers.get("date", ""))
        return (
            key_id,
            raw.headers.get("x-acs-signature-nonce", ""),
            stamp,
            raw.headers.get("x-acs-security-token", ""),
        )

    # -- common checks -------------------------------------------------------------------------

    def _check_clock(self, stamp: datetime | None) -> None:
        if stamp is None:
            raise _error(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        skew = abs((datetime.now(UTC) - stamp).total_seconds())
        if skew > MAX_CLOCK_SKEW_SECONDS:
            raise _error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )

    def _remember_nonce(self, key_id: str, nonce: str) -> None:
        if not nonce:
            raise chosen_codes.MISSING_SIGNATURE_NONCE.error(
                "SignatureNonce is mandatory for this request."
            )
        now = time.monotonic()
        with self._lock:
            if len(self._nonces) > 10_000:
                horizon = now - 2 * MAX_CLOCK_SKEW_SECONDS
                self._nonces = {k: t for k, t in self._nonces.items() if t > horizon}
            slot = f"{key_id}/{nonce}"
            if slot in self._nonces:
                raise _error(
                    400, "SignatureNonceUsed", "Specified signature nonce was used already."
                )
            self._nonces[slot] = now

    def _check_token(self, tx: Tx, key_id: str, token: str) -> Caller:
        doc = tx.get(KEY_SCOPE, KEY_KIND, key_id)
        assert doc is not None
        if doc.get("security_token"):
            if not token:
                raise _error(400, "InvalidSecurityToken.Missing", "The security token is missing.")
            if not _constant_time_equal(str(doc["security_token"]), token):
                raise _error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                )
            if float(doc["expires_at"]) <= self._clock.now():
                raise _error(
                    400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
                )
        elif token:
            raise _error(
                400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed."
            )
        return Caller(
            account=str(doc["account"]),
            account_name=str(doc["account_name"]),
            access_key_id=key_id,
            identity_type=str(doc.get("identity_type", "Account")),
            user_name=str(doc.get("user_name", "")),
            user_id=str(doc.get("user_id", "")),
            role_name=str(doc.get("role_name", "")),
            role_id=str(doc.get("role_id", "")),
            session_name=str(doc.get("session_name", "")),
            session_policy=doc.get("session_policy"),
        )


def _constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
