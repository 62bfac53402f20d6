"""One deploy at a time per app: a Prefect global concurrency limit of 1 keyed on the app.

Two runs for the same app (account A, region, namespace, name) would otherwise both see it
missing and both create it, or start two change orders. The limit is created on first use and
held with a lease for the whole inspect-and-write phase of a run, so the second run waits, then
inspects what the first one left. The lease is renewed while held; a holder that dies silently
(SIGKILL, a lost machine) frees it when the lease expires (`LEASE_SECONDS`), and one whose flow
run Prefect already knows to be over (Crashed, Failed, Cancelled, Completed: a worker marks a
killed process Crashed) is released at once by the next run. Who holds a lock is kept in a
Prefect Variable named after the limit.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_run_logger

from crossdeploy.prefect_api import delete_variable, quick_client, read_variable, write_variable
from crossdeploy.spec import DeploySpec

LEASE_SECONDS = 60.0
"""Prefect's shortest lease; renewed every third of it while held."""
POLL_SECONDS = 0.5


class AppBusyError(TimeoutError):
    """Another run held the app's lock for longer than this run would wait."""


def lock_name(spec: DeploySpec, app_uid: str) -> str:
    """`sae-app-lock-<A uid>-<region>-<namespace>-<app>`, in the characters names allow (not
    `crossdeploy-...`: those Variables are deploy ledgers)."""
    raw = f"sae-app-lock-{app_uid}-{spec.app.region}-{spec.app.namespace_id}-{spec.app.name}"
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower())


@contextmanager
def app_lock(
    spec: DeploySpec, app_uid: str, *, flow_run_id: UUID | None, wait_seconds: float
) -> Iterator[None]:
    """Hold the app's lock for the block; wait up to `wait_seconds` for it (AppBusyError after)."""
    name = lock_name(spec, app_uid)
    with quick_client() as client:
        _ensure_limit(client, name)
        lease = _acquire(client, name, flow_run_id, wait_seconds)
        if flow_run_id is not None:
            write_variable(client, name, {"lease": str(lease), "flow_run": str(flow_run_id)})
        stop = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lease, stop), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            if flow_run_id is not None:
                delete_variable(client, name)
            client.release_concurrency_slots_with_lease(lease)


def _ensure_limit(client: SyncPrefectClient, name: str) -> None:
    try:
        client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        with suppress(ObjectAlreadyExists):  # another run created it first
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def _acquire(
    client: SyncPrefectClient, name: str, flow_run_id: UUID | None, wait_seconds: float
) -> UUID:
    holder = ConcurrencyLeaseHolder(type="flow_run", id=flow_run_id) if flow_run_id else None
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        try:
            response = client.increment_concurrency_slots_with_lease(
                [name], 1, "concurrency", LEASE_SECONDS, holder
            )
            return UUID(response.json()["lease_id"])
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
        if _release_if_stale(client, name):
            continue
        if time.monotonic() > deadline:
            raise AppBusyError(
                f"another deploy of this app held {name} for over {wait_seconds:g} s"
            )
        if not said:
            get_run_logger().info("waiting for another deploy of this app to finish (%s)", name)
            said = True
        time.sleep(POLL_SECONDS)


def _release_if_stale(client: SyncPrefectClient, name: str) -> bool:
    """Release the lease of a holder whose flow run is over; True when one was released."""
    held = read_variable(client, name)
    if not isinstance(held, dict):
        return False
    try:
        run = client.read_flow_run(UUID(str(held["flow_run"])))
    except ObjectNotFound:
        run = None
    if run is not None and (run.state is None or not run.state.is_final()):
        return False
    client.release_concurrency_slots_with_lease(UUID(str(held["lease"])))
    delete_variable(client, name)
    return True


def _renew(lease: UUID, stop: threading.Event) -> None:
    with quick_client() as client:
        while not stop.wait(LEASE_SECONDS / 3):
            client.renew_concurrency_lease(lease, LEASE_SECONDS)
