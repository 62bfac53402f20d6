"""Our own calls to the Prefect API (app lock, ledger, quota slots): quick and never lost.

Prefect's server on SQLite answers 503 when a write meets another writer's transaction
(SQLITE_BUSY_SNAPSHOT), which happens at the busiest moments of a run: its start and end, and
throughout a fleet. Prefect's client then sleeps 2, 4, 8... seconds before asking again, which
put seconds of pure waiting into every deploy. `quick_client()` is a Prefect client whose
transport asks again within tens of milliseconds first; `patiently` keeps asking for minutes
(losing the ledger record of a write that landed would leave an orphan; losing a quota slot
would fail an app with nothing wrong with it).

A transport given to httpx replaces the one it would build from the client's settings, so ours is
built from Prefect's own: TLS (`PREFECT_API_SSL_CERT_FILE`, `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`),
HTTP/2 (`PREFECT_API_ENABLE_HTTP2`) and the connection pool Prefect's client uses. Prefect wraps a
failed slot request in `ConcurrencySlotAcquisitionError`; `server_busy` looks through it.
"""

from __future__ import annotations

import functools
import random
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import certifi
import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import (
    PREFECT_API_ENABLE_HTTP2,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
)
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

T = TypeVar("T")

QUICK_ATTEMPTS = 8
PATIENCE_SECONDS = 180.0


class _QuickRetryTransport(httpx.HTTPTransport):
    """Sends a request again after 20-100 ms (growing) while the answer is 503."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, QUICK_ATTEMPTS + 1):
            response = super().handle_request(request)
            if response.status_code != 503 or attempt == QUICK_ATTEMPTS:
                return response
            response.close()
            time.sleep(random.uniform(0.02, 0.1) * attempt)
        raise AssertionError("unreachable")


def prefect_tls_context() -> ssl.SSLContext:
    """How Prefect's client verifies the API's certificate, from the same settings."""
    return _tls_context(
        bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()),
        PREFECT_API_SSL_CERT_FILE.value() or certifi.where(),
    )


@functools.lru_cache(maxsize=8)
def _tls_context(skip_verify: bool, cafile: str) -> ssl.SSLContext:
    """One context per setting: loading a CA bundle takes tens of milliseconds, which every
    quota slot, lock and ledger round trip paid before."""
    if skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


@contextmanager
def quick_client() -> Iterator[SyncPrefectClient]:
    """A sync Prefect client that rides out a busy SQLite server in milliseconds."""
    tls = prefect_tls_context()
    transport = _QuickRetryTransport(
        verify=tls,
        http2=bool(PREFECT_API_ENABLE_HTTP2.value()),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=25),
        retries=3,  # connect retries, as Prefect's own transport
    )
    settings = {"transport": transport, "verify": tls}  # else Prefect loads its CA bundle again
    with get_client(sync_client=True, httpx_settings=settings) as client:
        yield client


def server_busy(exc: BaseException) -> bool:
    """A 5xx answer or no answer at all, also when Prefect's slot acquisition wraps it: worth
    asking again."""
    if isinstance(exc, ConcurrencySlotAcquisitionError) and exc.__cause__ is not None:
        return server_busy(exc.__cause__)
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError) and not _certificate_refused(exc)


def _certificate_refused(exc: BaseException) -> bool:
    """The API's TLS certificate was refused: asking again cannot help."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def patiently(fn: Callable[[], T]) -> T:
    """`fn()`, retried while the Prefect server is busy (up to PATIENCE_SECONDS)."""
    retrying = Retrying(
        retry=retry_if_exception(server_busy),
        wait=wait_random_exponential(multiplier=0.5, max=8.0),
        stop=stop_after_delay(PATIENCE_SECONDS),
        reraise=True,
    )
    return retrying(fn)


def read_variable(client: SyncPrefectClient, name: str) -> Any:
    variable = client.read_variable_by_name(name)
    return variable.value if variable is not None else None


def write_variable(client: SyncPrefectClient, name: str, value: Any) -> None:
    """Create or overwrite a Prefect Variable."""
    try:
        client.create_variable(VariableCreate(name=name, value=value))
    except ObjectAlreadyExists:
        client.update_variable(VariableUpdate(name=name, value=value))


def delete_variable(client: SyncPrefectClient, name: str) -> None:
    with suppress(ObjectNotFound):
        client.delete_variable_by_name(name)
