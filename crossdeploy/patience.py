"""Calls to the Prefect API that must outlast a busy server.

Prefect's server on SQLite answers 503 while its database is locked by concurrent writers (a
fleet's many task runs), and its client gives up after a few retries. Losing a ledger record of
a write that landed would leave an orphan, and losing a quota slot would fail an app that had
nothing wrong with it, so those calls are retried here for minutes, with jittered backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

T = TypeVar("T")

PATIENCE_SECONDS = 180.0


def server_busy(exc: BaseException) -> bool:
    """A 5xx answer or no answer at all: worth asking again."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def patiently(fn: Callable[[], T]) -> T:
    """`fn()`, retried while the Prefect server is busy (up to PATIENCE_SECONDS)."""
    retrying = Retrying(
        retry=retry_if_exception(server_busy),
        wait=wait_random_exponential(multiplier=0.5, max=8.0),
        stop=stop_after_delay(PATIENCE_SECONDS),
        reraise=True,
    )
    return retrying(fn)
