"""Every Alibaba Cloud call goes through `call`: retries by error code, errors by code.

Retried, with exponential backoff and full jitter (tenacity): throttling (`Throttling*`), HTTP
5xx and their codes (`RETRYABLE_CODES`, which include SAE's `System.Upgrading`), and network
failures (the SDK's UnretryableException around a connection error). Anything
else is raised at once as `CloudError`, carrying the service's code, HTTP status and message: the
SDK's messages hold no credentials, and this module adds none.

Network failures are retried for `RetryPolicy.network_seconds` once an endpoint has answered in
this process (a restarting endpoint is back within seconds), but only `first_contact_seconds`
before it ever has: an endpoint that is not there is named at once, with its address, the cause
read from the exception types (connection refused, DNS, TLS, timeout) and what to check.

ACR may answer a failed call with HTTP 200 and a body saying `IsSuccess: false` and its `Code`
(Terraform's provider checks every CR reply for it); the SDK returns such a body as a success, so
`call` turns it into the same `CloudError` as an error reply with that code.

Inside `throttled_by(take)`, every attempt first calls `take(action)`, which may block until the
caller's API quota allows another call (crossdeploy/quota.py); elsewhere nothing is waited for.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import requests.exceptions
import urllib3.exceptions
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
from darabonba.exceptions import UnretryableException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

logger = logging.getLogger("crossdeploy.cloud")

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "InternalError",
        "SystemError",
        "ServiceTimeout",
        "UnknownError",
        # SAE's 400 "The system is being upgraded. Please try again later." (SAE error table,
        # CreateApplication/DeployApplication/...): a passing server condition, like a 5xx.
        "System.Upgrading",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    initial_seconds: float = 0.2
    max_seconds: float = 8.0
    network_seconds: float = 60.0
    """Network failures (the endpoint unreachable, a connection reset) are retried for this long
    whatever `attempts` says: a restarting endpoint is back within seconds, not attempts."""
    first_contact_seconds: float = 3.0
    """... but only this long at an endpoint that has not answered yet in this process."""


DEFAULT_RETRY = RetryPolicy()


class CloudError(Exception):
    """A failed call, by code. `code` is '' for network failures (`unreachable` then says
    where and why)."""

    def __init__(
        self,
        action: str,
        code: str,
        status: int | None,
        message: str,
        unreachable: Unreachable | None = None,
        denied: Denied | None = None,
    ) -> None:
        self.action = action
        self.code = code
        self.status = status
        self.message = message
        self.unreachable = unreachable
        self.denied = denied
        detail = f"{code} ({status})" if code else "network error"
        super().__init__(f"{action} failed: {detail}: {message}")


@dataclass(frozen=True)
class Denied:
    """A refusal for want of a RAM permission, as RAM's AccessDeniedDetail tells it."""

    action: str
    """The RAM action that was missing (AuthAction), e.g. `ram:CreateRole`."""
    resource: str
    """The resource it was wanted on; '' when the cloud keeps it encoded (its
    EncodedDiagnosticMessage is opaque outside RAM's DecodeDiagnosticMessage)."""
    explicit: bool
    """A Deny statement refused it (NoPermissionType ExplicitDeny), not a missing Allow."""


NO_PERMISSION_CODES = frozenset({"NoPermission", "NoPrivilege"})
"""RAM's and STS's, and ACR's, codes for a missing permission; SAE's and VPC's are `Forbidden.*`."""


def denial(exc: BaseException) -> Denied | None:
    """What permission a refusal says was missing, when it is one."""
    code = str(getattr(exc, "code", "") or "")
    data = getattr(exc, "data", None) or {}
    detail = getattr(exc, "access_denied_detail", None) or data.get("AccessDeniedDetail")
    if not isinstance(detail, dict):
        detail = {}
    if not detail and code not in NO_PERMISSION_CODES and not code.startswith("Forbidden"):
        return None
    action = str(detail.get("AuthAction") or "")
    resource = ""
    try:
        decoded = json.loads(base64.b64decode(str(detail.get("EncodedDiagnosticMessage", ""))))
        resource = str(decoded.get("AuthResource") or "")
    except (ValueError, TypeError, AttributeError):
        pass  # the cloud's encoding: readable through RAM only
    return Denied(action, resource, detail.get("NoPermissionType") == "ExplicitDeny")


@dataclass(frozen=True)
class Unreachable:
    """Why a call got no answer: the address it went to, the cause, what to check."""

    address: str
    cause: str
    hint: str

    def __str__(self) -> str:
        return f"cannot reach {self.address}: {self.cause}; {self.hint}"


def _kind(*kinds: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, kinds)


def _timed_out(exc: BaseException) -> bool:
    """A timeout; urllib3's NewConnectionError (refused, unreachable) is a kind of its
    ConnectTimeoutError without being one."""
    timeouts = (
        urllib3.exceptions.ConnectTimeoutError,
        urllib3.exceptions.ReadTimeoutError,
        requests.exceptions.Timeout,
        TimeoutError,
    )
    return isinstance(exc, timeouts) and not isinstance(exc, urllib3.exceptions.NewConnectionError)


NETWORK_HINT = "check this machine's network, firewall and proxy settings"
_CAUSES: tuple[tuple[Callable[[BaseException], bool], str, str], ...] = (
    (
        _kind(ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError),
        "the TLS handshake failed",
        "check the endpoint's certificate and the CA this machine trusts",
    ),
    (
        _kind(urllib3.exceptions.NameResolutionError, socket.gaierror),
        "its host name does not resolve (DNS)",
        "check the endpoint and region the credentials block sets, and this machine's DNS",
    ),
    (
        _kind(ConnectionRefusedError),
        "connection refused (nothing is listening there)",
        "start the service at that address (the sandbox: `crossdeploy sandbox serve`), or check "
        "the endpoint the credentials block sets",
    ),
    (_timed_out, "timed out", NETWORK_HINT),
)
"""Causes by the exception types a network failure carries, the most telling first."""


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one it wraps: causes, contexts, the SDK's inner exception and
    urllib3's reason."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        item = todo.pop(0)
        if any(item is known for known in seen):
            continue
        seen.append(item)
        linked = [item.__cause__, item.__context__, getattr(item, "inner_exception", None)]
        linked += [getattr(item, "reason", None), *item.args]
        todo += [e for e in linked if isinstance(e, BaseException)]
    return seen


def unreachable(exc: BaseException) -> Unreachable:
    """Where a network failure went and why, from the exception types it carries."""
    chain = _chain(exc)
    request = getattr(exc, "last_request", None)
    host = getattr(request, "headers", {}).get("host") if request is not None else None
    address = f"{getattr(request, 'protocol', 'https')}://{host}" if host else "the endpoint"
    for matches, cause, hint in _CAUSES:
        if any(matches(item) for item in chain):
            return Unreachable(address, cause, hint)
    innermost = type(chain[-1]).__name__
    return Unreachable(address, f"the connection failed ({innermost})", NETWORK_HINT)


class _BodyError(Exception):
    """A 2xx reply whose body says the call failed: ACR's `IsSuccess: false` with a `Code`."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.status_code = status
        self.message = message


def _failure_in_body(result: object) -> _BodyError | None:
    """The failure a successful-looking SDK response carries in its body, if any."""
    body = getattr(result, "body", None)
    if getattr(body, "is_success", None) is not False:
        return None
    code = str(getattr(body, "code", "") or "")
    status = int(getattr(result, "status_code", 0) or 200)
    return _BodyError(code, status, str(getattr(body, "message", "") or code))


@dataclass(frozen=True)
class _CredentialRefusal:
    """STS refused the block's credential source (a role it cannot assume, a bad key)."""

    code: str
    status: int | None
    message: str


def _credential_refusal(exc: BaseException) -> _CredentialRefusal | None:
    """The STS answer behind a failure of the credentials library, when it got one.

    The library keeps STS's answer only inside its exception's text ("..., http_code: 404,
    result: {...}"), so the code is read from that JSON body, never from the wording."""
    failure = next((e for e in _chain(exc) if isinstance(e, CredentialException)), None)
    if failure is None:
        return None
    text = str(failure.message)
    status = re.search(r"http_code: (\d+)", text)
    try:
        body = json.loads(text[text.index("{") :])
    except ValueError:
        return None  # no answer: the library could not reach STS (a network failure)
    if not isinstance(body, dict) or not body.get("Code"):
        return None
    message = f"the block's credentials were refused: {body.get('Message') or body['Code']}"
    return _CredentialRefusal(str(body["Code"]), int(status.group(1)) if status else None, message)


def _retryable_code(code: str, status: int) -> bool:
    return code.startswith("Throttling") or status >= 500 or code in RETRYABLE_CODES


def is_retryable(exc: BaseException) -> bool:
    """Throttling, server errors and network errors, judged by class, status and code."""
    if isinstance(exc, ThrottlingException):
        return True
    if isinstance(exc, AlibabaCloudException | _BodyError):
        code = str(getattr(exc, "code", "") or "")
        return _retryable_code(code, int(getattr(exc, "status_code", 0) or 0))
    if (refusal := _credential_refusal(exc)) is not None:
        return _retryable_code(refusal.code, refusal.status or 0)
    return isinstance(exc, UnretryableException | ConnectionError | TimeoutError)


def _describe(action: str, exc: BaseException) -> CloudError:
    if isinstance(exc, _BodyError):
        return CloudError(action, exc.code, exc.status_code, exc.message)
    if (refusal := _credential_refusal(exc)) is not None:
        return CloudError(action, refusal.code, refusal.status, refusal.message)
    if isinstance(exc, AlibabaCloudException):
        code = str(getattr(exc, "code", "") or "")
        status = getattr(exc, "status_code", None)
        data = getattr(exc, "data", None) or {}
        message = str(data.get("Message") or getattr(exc, "message", "") or code)
        status_code = int(status) if status else None
        return CloudError(action, code, status_code, message, denied=denial(exc))
    where = unreachable(exc)
    return CloudError(action, "", None, str(where), where)


_throttle: ContextVar[Callable[[str], None] | None] = ContextVar(
    "crossdeploy_throttle", default=None
)


@contextmanager
def throttled_by(take: Callable[[str], None]) -> Iterator[None]:
    """Call `take(action)` before every attempt of every `call` made in this context."""
    token = _throttle.set(take)
    try:
        yield
    finally:
        _throttle.reset(token)


_answered: set[str] = set()
"""Endpoints that have answered a call in this process (any answer, an error included)."""


def _endpoint(fn: Callable[..., Any]) -> str | None:
    """The endpoint an SDK client's method calls (None for anything else)."""
    endpoint = getattr(getattr(fn, "__self__", None), "_endpoint", None)
    return endpoint if isinstance(endpoint, str) else None


def _stop(retry: RetryPolicy, endpoint: str | None) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and not isinstance(exc, AlibabaCloudException | _BodyError):
            first = endpoint is not None and endpoint not in _answered
            limit = retry.first_contact_seconds if first else retry.network_seconds
            return (state.seconds_since_start or 0.0) >= limit
        return state.attempt_number >= retry.attempts

    return stop


def write_once(
    action: str,
    fn: Callable[[], T],
    *,
    landed: Callable[[], T | None],
    retry: RetryPolicy = DEFAULT_RETRY,
) -> T:
    """`call` for a write that must not take effect twice (a new policy version, a deploy).

    Before each retry `landed()` looks for the effect of an earlier attempt whose reply was lost
    and returns it (or None to write again), so the retry adopts it instead of repeating it.
    """
    tried = False

    def attempt() -> T:
        nonlocal tried
        if tried and (found := landed()) is not None:
            return found
        tried = True
        return fn()

    return call(action, attempt, retry=retry)


def call(action: str, fn: Callable[..., T], *args: Any, retry: RetryPolicy = DEFAULT_RETRY) -> T:
    """Run one SDK call; retry transient failures; raise CloudError for the rest."""
    take = _throttle.get()
    endpoint = _endpoint(fn)

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = _describe(action, exc) if exc else action
        logger.warning("retrying (attempt %d): %s", state.attempt_number, reason)

    retrying = Retrying(
        stop=_stop(retry, endpoint),
        wait=wait_random_exponential(multiplier=retry.initial_seconds, max=retry.max_seconds),
        retry=retry_if_exception(is_retryable),
        before_sleep=log_retry,
        reraise=True,
    )

    def attempt(*args: Any) -> T:
        if take is not None:
            take(action)
        try:
            result = fn(*args)
        except AlibabaCloudException:
            _answered.add(endpoint or "")
            raise
        _answered.add(endpoint or "")
        if (failure := _failure_in_body(result)) is not None:
            raise failure
        return result

    try:
        return retrying(attempt, *args)
    except (
        AlibabaCloudException,
        _BodyError,
        UnretryableException,
        CredentialException,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise _describe(action, exc) from None
