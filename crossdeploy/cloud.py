"""Every Alibaba Cloud call goes through `call`: retries by error code, errors by code.

Retried, with exponential backoff and full jitter (tenacity): throttling (`Throttling*`), HTTP
5xx and their codes (`RETRYABLE_CODES`, which include SAE's `System.Upgrading`), and network
failures (the SDK's UnretryableException around a connection error). Anything
else is raised at once as `CloudError`, carrying the service's code, HTTP status and message: the
SDK's messages hold no credentials, and this module adds none.

ACR may answer a failed call with HTTP 200 and a body saying `IsSuccess: false` and its `Code`
(Terraform's provider checks every CR reply for it); the SDK returns such a body as a success, so
`call` turns it into the same `CloudError` as an error reply with that code.

Inside `throttled_by(take)`, every attempt first calls `take(action)`, which may block until the
caller's API quota allows another call (crossdeploy/quota.py); elsewhere nothing is waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

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


DEFAULT_RETRY = RetryPolicy()


class CloudError(Exception):
    """A failed call, by code. `code` is '' for network failures."""

    def __init__(self, action: str, code: str, status: int | None, message: str) -> None:
        self.action = action
        self.code = code
        self.status = status
        self.message = message
        detail = f"{code} ({status})" if code else "network error"
        super().__init__(f"{action} failed: {detail}: {message}")


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


def is_retryable(exc: BaseException) -> bool:
    """Throttling, server errors and network errors, judged by class, status and code."""
    if isinstance(exc, ThrottlingException):
        return True
    if isinstance(exc, AlibabaCloudException | _BodyError):
        code = str(getattr(exc, "code", "") or "")
        status = int(getattr(exc, "status_code", 0) or 0)
        return code.startswith("Throttling") or status >= 500 or code in RETRYABLE_CODES
    return isinstance(exc, UnretryableException | ConnectionError | TimeoutError)


def _describe(action: str, exc: BaseException) -> CloudError:
    if isinstance(exc, _BodyError):
        return CloudError(action, exc.code, exc.status_code, exc.message)
    if isinstance(exc, AlibabaCloudException):
        code = str(getattr(exc, "code", "") or "")
        status = getattr(exc, "status_code", None)
        data = getattr(exc, "data", None) or {}
        message = str(data.get("Message") or getattr(exc, "message", "") or code)
        return CloudError(action, code, int(status) if status else None, message)
    return CloudError(action, "", None, type(exc).__name__)


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


def _stop(retry: RetryPolicy) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and not isinstance(exc, AlibabaCloudException | _BodyError):
            return (state.seconds_since_start or 0.0) >= retry.network_seconds
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

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = _describe(action, exc) if exc else action
        logger.warning("retrying (attempt %d): %s", state.attempt_number, reason)

    retrying = Retrying(
        stop=_stop(retry),
        wait=wait_random_exponential(multiplier=retry.initial_seconds, max=retry.max_seconds),
        retry=retry_if_exception(is_retryable),
        before_sleep=log_retry,
        reraise=True,
    )

    def attempt(*args: Any) -> T:
        if take is not None:
            take(action)
        result = fn(*args)
        if (failure := _failure_in_body(result)) is not None:
            raise failure
        return result

    try:
        return retrying(attempt, *args)
    except (
        AlibabaCloudException,
        _BodyError,
        UnretryableException,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise _describe(action, exc) from None
