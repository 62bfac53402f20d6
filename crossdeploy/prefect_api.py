"""Our own calls to the Prefect API (app lock, ledger, quota slots): quick and never lost.

Prefect's server on SQLite answers 503 when a write meets another writer's transaction
(SQLITE_BUSY_SNAPSHOT), which happens at the busiest moments of a run: its start and end, and
throughout a fleet. Prefect's client then sleeps 2, 4, 8... seconds before asking again, which
put seconds of pure waiting into every deploy. `quick_client()` is a Prefect client whose
transport asks again within tens of milliseconds first; `patiently` keeps asking for minutes
(losing the ledger record of a write that landed would leave an orphan; losing a quota slot
would fail an app with nothing wrong with it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
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


@contextmanager
def quick_client() -> Iterator[SyncPrefectClient]:
    """A sync Prefect client that rides out a busy SQLite server in milliseconds."""
    transport = _QuickRetryTransport(retries=3)  # connect retries, as Prefect's own transport
    with get_client(sync_client=True, httpx_settings={"transport": transport}) as client:
        yield client


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
