"""One run at a time per app: a Prefect global concurrency limit of 1 keyed on the app.

Two runs for the same app (account A, region, namespace, name) would otherwise both see it
missing and both create it, or start two change orders. Deploy, fleet (per app), teardown and
reconcile-apply (through its deploy subflows) hold the app's lock from inspection to the end.

The slot is taken with a lease (holder: the run's flow run) through our own quick client
(crossdeploy/prefect_api.py), not Prefect's `concurrency()`: Prefect's client answers the 503 a
busy SQLite server gives (its task-run recorder writes at the same moment the lock is asked for)
by sleeping two seconds or more, which was most of a no-op deploy's time. A waiting run reads the
limit every POLL_SECONDS (and says once that it waits); when it looks free it asks for the slot,
waiting as the server's Retry-After says (up to RACE_SECONDS) if another run took it first.

A daemon thread renews the lease every three quarters of LEASE_SECONDS, asking a busy or
unreachable server again within a second until the lease would expire. When renewal fails for
good (the server answers 410 or 404: the lease was revoked, expired or lost in a restart; or it
expired unrenewed) it logs the loss as an error and stops the holding thread by raising an
exception in it (CPython's `PyThreadState_SetAsyncExc`, as Prefect's own renewal did); it leaves
here as `AppLockLostError`, so the run ends Failed with a message naming the lock. The exception
arrives at the holding thread's next Python instruction: a thread blocked in one call (a sleep, a
wait on a task) gets it when that call returns. Prefect's `prefect.concurrency-limit.acquired`
and `.released` events are not emitted (nothing here or in automations.yaml uses them); the
limit's slot count and the holder record below show who holds the lock.

The holder also records itself in a Prefect Variable named after the limit, created only if
absent; a run goes on only once it holds both the slot and that record, so the record keeps the
exclusion even when the slot count is wrong. It is wrong after a server restart that lost the
leases (the OSS server keeps them in memory by default): the count stays 1 and releasing the lost
lease does nothing. So a run that finds the limit full looks at the record each time: a holder
whose flow run is over (Completed, Failed, Crashed, Cancelled: a worker marks a killed process
Crashed) has its record deleted (by id: one waiter wins) and its lease released; a full limit with
no record left (after ORPHAN_GRACE_SECONDS, the time a new holder takes to write its record) has
its orphaned slot given back.

A holder killed with nobody to mark its run (SIGKILL, the machine's OOM killer; no worker: a
plain `crossdeploy deploy` against a `prefect server`) leaves its run Running and its lease
alive. The record also names the holder's process (crossdeploy/holder_process.py: hostname,
boot id and pid namespace, pid, start time), so a waiter on the same machine that finds that
process gone (no such pid, or a pid reused by a later process) marks the run Crashed saying so,
deletes the record (by id: one waiter wins), releases the lease and goes on at once, logging why.
A holder on another machine, or a record without its process (written by an earlier version, or
where /proc is missing), is judged by its lease: it is lost when the server lets it expire, and
the next run, holding the slot then, takes over once that lease has been gone for LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, VariableCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_logger, get_run_logger
from prefect.runtime import flow_run
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect.states import Crashed

from crossdeploy.holder_process import HolderProcess, gone, this_process
from crossdeploy.prefect_api import patiently, quick_client
from crossdeploy.spec import DeploySpec

WAIT_MARGIN_SECONDS = 600.0
"""Beyond the rollout timeout, how long a run waits by default for a lock another run holds."""
LEASE_SECONDS = 60.0
"""Prefect's shortest lease; renewed every three quarters of it while held."""
RENEW_FRACTION = 0.75
"""How far into a lease it is renewed: a quarter of it is left for a busy server."""
RENEW_RETRY_SECONDS = (0.05, 1.0)
"""A failed renewal is asked again after the first, doubling up to the second."""
POLL_SECONDS = 2.0
"""How often a waiting run looks at the limit and its holder."""
RACE_SECONDS = 5.0
"""How long to wait for a slot that was free a moment ago (another run took it)."""
ORPHAN_GRACE_SECONDS = 1.0
"""A full limit with no holder on record is looked at twice this far apart before its slot is
given back: a new holder writes its record within it."""

_held: ContextVar[frozenset[str]] = ContextVar("crossdeploy_app_locks", default=frozenset())
"""The app locks the current run (and its subflows and tasks) already holds."""


class AppBusyError(TimeoutError):
    """Another run held the app's lock for longer than this run would wait."""


class AppLockLostError(Exception):
    """The app's lock was lost while this run held it (its lease could not be renewed), so the
    run was stopped: another run of the app may start."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"lost the app lock {name} while holding it: its lease could not be renewed (the "
            "Prefect server lost or revoked it), so this run was stopped before another run "
            "of the app could change it at the same time"
        )


class _LeaseLost(asyncio.CancelledError):
    """Raised in the holding thread when its lease is lost. A BaseException (as Prefect's
    cancellation), so the run's own `except Exception` does not swallow it; app_lock turns it
    into AppLockLostError."""


def lock_name(spec: DeploySpec, app_uid: str) -> str:
    """`sae-app-lock-<A uid>-<region>-<namespace>-<app>`, in the characters names allow (not
    `crossdeploy-...`: those Variables are deploy ledgers)."""
    raw = f"sae-app-lock-{app_uid}-{spec.app.region}-{spec.app.namespace_id}-{spec.app.name}"
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower())


@contextmanager
def app_lock(
    spec: DeploySpec,
    app_uid: str,
    *,
    flow_run_id: UUID | None = None,
    wait_seconds: float | None = None,
) -> Iterator[bool]:
    """Hold the app's lock for the block; wait up to `wait_seconds` for it (AppBusyError after;
    by default the spec's rollout timeout plus WAIT_MARGIN_SECONDS: another run's deploy of the
    app, followed to its end, and its diagnosis and rollback). The holder is the flow run
    `flow_run_id`, by default the current one (none outside a flow run). Yields whether another
    run held it first (what was inspected before may have changed). A subflow or task of the
    run that holds it goes straight in. AppLockLostError when the lease is lost while held."""
    if flow_run_id is None and (current := flow_run.get_id()):
        flow_run_id = UUID(current)
    name = lock_name(spec, app_uid)
    if wait_seconds is None:
        wait_seconds = spec.rollout.timeout_seconds + WAIT_MARGIN_SECONDS
    if name in _held.get():
        yield False
        return
    _ensure_limit(name)
    waiter = _Waiter(name, flow_run_id, time.monotonic() + wait_seconds, wait_seconds)
    while True:
        leases: list[_Lease] = []
        try:
            with ExitStack() as slot:
                record = waiter.take(slot, leases)
                if record is None:
                    continue
                token = _held.set(_held.get() | {name})
                try:
                    yield waiter.said
                finally:
                    leases[0].leave()  # first: from here on the run is not stopped any more
                    _held.reset(token)
                    _forget(record, patient=not leases[0].lost)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, AppLockLostError) or not (leases and leases[0].lost):
                raise
            raise AppLockLostError(name) from exc  # stopped, or cleaning up after it failed
        if leases[0].lost:  # lost as the block ended: its stop was taken back unraised
            raise AppLockLostError(name)
        return


@dataclass(frozen=True)
class _Record:
    """This run's holder record: the Variable's id and the lease it names."""

    variable_id: UUID
    lease: UUID


class _Lease:
    """A slot held under a lease: renewed by a daemon thread, released on leaving; when it is
    lost, the holding thread is stopped (`_LeaseLost` raised in it)."""

    def __init__(self, name: str, lease: UUID, granted: float) -> None:
        self.name = name
        self.lease = lease
        self.lost = False
        self._renewed = granted
        self._holder = threading.current_thread()
        self._left = threading.Event()
        self._gate = threading.Lock()  # the holder leaves, or is stopped: never both
        context = contextvars.copy_context()  # the run's API settings and logger
        self._renewer = threading.Thread(
            target=context.run,
            args=(self._renew_while_held,),
            name=f"app-lock-renewal-{lease}",
            daemon=True,
        )
        self._renewer.start()

    def leave(self) -> None:
        """Stop renewing; a stop sent but not yet raised in this (the holding) thread is taken
        back, and `lost` tells. Safe against that stop arriving meanwhile."""
        with suppress(_LeaseLost), self._gate:
            self._left.set()
            if self.lost:
                _raise_in(self._holder, None)

    def release(self) -> None:
        """Give the slot back; after a lost lease once and quietly (the server may be gone)."""
        with quick_client() as client:
            if not self.lost:
                patiently(lambda: client.release_concurrency_slots_with_lease(self.lease))
                return
            with suppress(httpx.HTTPError):
                client.release_concurrency_slots_with_lease(self.lease)

    def _renew_while_held(self) -> None:
        while self._holder.is_alive():
            due = self._renewed + LEASE_SECONDS * RENEW_FRACTION - time.monotonic()
            if self._left.wait(max(0.0, due)):
                return
            sent = time.monotonic()
            why = self._renew(expires=self._renewed + LEASE_SECONDS)
            if why is None:
                self._renewed = sent
            else:
                self._stop_holder(why)
                return

    def _renew(self, expires: float) -> str | None:
        """Renew the lease, asking again quickly while the server is busy or unreachable; why
        it is lost, or None (renewed, or the holder left meanwhile)."""
        delay, most = RENEW_RETRY_SECONDS
        # Prefect's client sleeps 2, 4, 8... s on a busy server: the lease would expire first.
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}), quick_client() as client:
            while True:
                try:
                    client.renew_concurrency_lease(self.lease, LEASE_SECONDS)
                    return None
                except httpx.HTTPStatusError as exc:
                    code = exc.response.status_code
                    if code in (httpx.codes.GONE, httpx.codes.NOT_FOUND):
                        return (
                            f"the server no longer has its lease {self.lease} (HTTP {code}: "
                            "revoked, expired, or lost in a server restart)"
                        )
                    error: Exception = exc
                except Exception as exc:  # no answer, or any other: ask again while it lasts
                    error = exc
                if self._left.is_set():
                    return None
                if time.monotonic() + delay >= expires:
                    return f"its lease {self.lease} expired before it could be renewed ({error})"
                self._left.wait(delay)
                delay = min(delay * 2, most)

    def _stop_holder(self, why: str) -> None:
        with self._gate:
            if self._left.is_set():
                return
            self.lost = True
            _logger().error(
                "lost the app lock %s: %s; stopping this run before another run of the app "
                "can change it at the same time",
                self.name,
                why,
            )
            _raise_in(self._holder, _LeaseLost)


def _raise_in(thread: threading.Thread, exc: type[BaseException] | None) -> None:
    """Raise `exc` in `thread` at its next Python instruction (None: take back one not raised
    yet). CPython's documented C API `PyThreadState_SetAsyncExc` is the only way to stop
    another thread's work from outside it (Prefect's concurrency() stopped a run the same way);
    it cannot interrupt a blocking call, which raises it once it returns."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), None if exc is None else ctypes.py_object(exc)
    )


@dataclass
class _Waiter:
    """One run's way to the lock: takes the slot, then the record; frees what a run that is
    over still holds; says once that it waits."""

    name: str
    flow_run_id: UUID | None
    deadline: float
    wait_seconds: float
    said: bool = False
    started: float = field(default_factory=time.monotonic)
    lease_gone_since: dict[str, float] = field(default_factory=dict)

    def take(self, slot: ExitStack, leases: list[_Lease]) -> _Record | None:
        """The slot (its lease appended to `leases`) and the record, held in `slot`; None (and
        nothing held) to try again."""
        with quick_client() as client:
            if patiently(lambda: _full(client, self.name)):
                self._busy(client)
                return None
            granted = self._acquire(client)
            if granted is None:
                self._busy(client)
                return None
        lease = _Lease(self.name, *granted)
        slot.callback(lease.release)
        slot.callback(lease.leave)  # first on the way out: stop renewing, then release
        leases.append(lease)
        record = self._record(lease.lease)
        if record is None:
            slot.close()  # a live holder is on record: give the slot back and wait for it
            with quick_client() as client:
                self._busy(client)
        elif self.said:
            waited = time.monotonic() - self.started
            _logger().info("took %s after waiting %.1f s", self.name, waited)
        return record

    def _acquire(self, client: SyncPrefectClient) -> tuple[UUID, float] | None:
        """Ask for the slot; while another run holds it (423), wait as the server's Retry-After
        says, up to RACE_SECONDS (None then). The lease and when it was asked for."""
        race_over = time.monotonic() + self._next_wait()
        while True:
            asked = time.monotonic()
            try:
                response = patiently(
                    lambda: client.increment_concurrency_slots_with_lease(
                        names=[self.name],
                        slots=1,
                        mode="concurrency",
                        lease_duration=LEASE_SECONDS,
                        holder=self._holder(),
                    )
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != httpx.codes.LOCKED:
                    raise
                left = race_over - time.monotonic()
                if left <= 0:
                    return None
                time.sleep(min(_retry_after(exc.response), left))
                continue
            granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
            if not granted.limits:  # deleted since _ensure_limit: the lease holds nothing
                with suppress(httpx.HTTPError):
                    client.release_concurrency_slots_with_lease(granted.lease_id)
                raise RuntimeError(
                    f"the concurrency limit {self.name} was deleted while this run waited "
                    "for it; run again to create it"
                )
            return granted.lease_id, asked

    def _holder(self) -> ConcurrencyLeaseHolder | None:
        if self.flow_run_id is None:
            return None
        return ConcurrencyLeaseHolder(type="flow_run", id=self.flow_run_id)

    def _next_wait(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AppBusyError(
                f"another run of this app held {self.name} for over {self.wait_seconds:g} s"
            )
        return min(RACE_SECONDS, left)

    def _busy(self, client: SyncPrefectClient) -> None:
        """The lock was taken: say so once, free what a run that is over still holds, or wait
        a little (AppBusyError past the deadline)."""
        if not self.said:
            _logger().info("waiting for another run of this app to finish (it holds %s)", self.name)
            self.said = True
        if not patiently(lambda: self._free_if_over(client)):
            time.sleep(min(POLL_SECONDS, self._next_wait()))

    def _record(self, lease: UUID) -> _Record | None:
        """Write this run's holder record; None if a live holder's record is there."""
        process = this_process()
        value = {
            "flow_run": str(self.flow_run_id) if self.flow_run_id else None,
            "lease": str(lease),
            "process": process.as_record() if process else None,
        }
        with quick_client() as client:
            while True:
                try:
                    created = patiently(
                        lambda: client.create_variable(VariableCreate(name=self.name, value=value))
                    )
                    return _Record(created.id, lease)
                except ObjectAlreadyExists:
                    if not patiently(lambda: self._free_if_over(client, slot_is_mine=True)):
                        return None

    def _free_if_over(self, client: SyncPrefectClient, *, slot_is_mine: bool = False) -> bool:
        """Free the lock from a holder that is over; True when something was freed."""
        variable = client.read_variable_by_name(self.name)
        if variable is None:
            return slot_is_mine or self._give_back_orphan(client)
        held = variable.value if isinstance(variable.value, dict) else {}
        over = self._over(client, held, probe_lease=slot_is_mine)
        if over is None:
            return False
        run_id = _uuid(held.get("flow_run"))
        if isinstance(over, HolderProcess) and run_id is not None:
            self._crash(client, run_id, over)  # first: a waiter that dies next leaves it over
        if not _delete_record(client, variable.id):
            return True  # another waiter took it over first
        lease = _uuid(held.get("lease"))
        if lease is not None:
            client.release_concurrency_slots_with_lease(lease)
        if isinstance(over, HolderProcess):
            _logger().info(
                "the process that held %s (pid %d on %s, flow run %s) is gone, killed or ended "
                "before its run could; the run was marked Crashed and its lock freed",
                self.name,
                over.pid,
                over.host,
                run_id,
            )
        else:
            _logger().info(
                "the run that held %s is over (flow run %s); its lock was freed",
                self.name,
                run_id,
            )
        return True

    def _over(
        self, client: SyncPrefectClient, held: dict[str, Any], *, probe_lease: bool
    ) -> HolderProcess | Literal[True] | None:
        """Why the holder is over: True when its flow run is final or gone; its process when
        that ran on this machine and is gone (the run still open: nobody marked it); True
        when (`probe_lease`: asked only once the slot is ours, as asking renews a lease that
        is there) its lease has been gone for a lease's length: a holder on another machine
        that died with nobody to mark its run, whose lease the server let expire. None while
        the holder may be alive."""
        run_id = _uuid(held.get("flow_run"))
        if run_id is not None:
            try:
                run = client.read_flow_run(run_id)
            except ObjectNotFound:
                return True
            if run.state is not None and run.state.is_final():
                return True
        process = HolderProcess.from_record(held.get("process"))
        if process is not None and gone(process):
            return process
        lease = _uuid(held.get("lease"))
        if not probe_lease or lease is None or _lease_alive(client, lease):
            self.lease_gone_since.pop(str(lease), None)
            return None
        since = self.lease_gone_since.setdefault(str(lease), time.monotonic())
        if time.monotonic() - since < LEASE_SECONDS:
            return None
        return True

    def _crash(self, client: SyncPrefectClient, run_id: UUID, process: HolderProcess) -> None:
        """Mark the run of a holder whose process is gone Crashed, saying so (a run that
        ended meanwhile keeps its state: the server refuses to leave a final one)."""
        client.set_flow_run_state(
            run_id,
            Crashed(
                message=(
                    f"the process running this flow run (pid {process.pid} on {process.host}) is "
                    f"gone: it was killed or ended before the run could; the next run of the app "
                    f"freed its app lock {self.name}"
                )
            ),
        )

    def _give_back_orphan(self, client: SyncPrefectClient) -> bool:
        """A full limit nobody is on record for (its lease was lost in a server restart):
        give its slot back, once, after making sure no new holder was writing its record."""
        if not _full(client, self.name):
            return False
        time.sleep(ORPHAN_GRACE_SECONDS)
        if client.read_variable_by_name(self.name) is not None or not _full(client, self.name):
            return False
        client.release_concurrency_slots([self.name], 1, ORPHAN_GRACE_SECONDS)
        _logger().warning(
            "%s was full with no holder on record (its lease was lost, e.g. in a Prefect server "
            "restart with in-memory lease storage); its slot was given back",
            self.name,
        )
        return True


def _ensure_limit(name: str) -> None:
    with quick_client() as client:
        try:
            patiently(lambda: client.read_global_concurrency_limit_by_name(name))
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it first
                patiently(
                    lambda: client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=1)
                    )
                )


def _full(client: SyncPrefectClient, name: str) -> bool:
    limit = client.read_global_concurrency_limit_by_name(name)
    return limit.active and limit.active_slots >= limit.limit


def _lease_alive(client: SyncPrefectClient, lease: UUID) -> bool:
    """Whether the server still has the lease (renewing is the only way to ask: 410 if not)."""
    try:
        client.renew_concurrency_lease(lease, LEASE_SECONDS)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == httpx.codes.GONE:
            return False
        raise
    return True


def _retry_after(response: httpx.Response) -> float:
    """The seconds a 423 asks to wait before asking again (POLL_SECONDS when unreadable)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", POLL_SECONDS)))
    except ValueError:
        return POLL_SECONDS


def _forget(record: _Record, *, patient: bool) -> None:
    """Delete this run's holder record. After a lost lock, once and quietly (the server may be
    gone): waiters delete the record of a run that is over."""
    with quick_client() as client:
        if patient:
            patiently(lambda: _delete_record(client, record.variable_id))
            return
        with suppress(httpx.HTTPError):
            _delete_record(client, record.variable_id)


def _delete_record(client: SyncPrefectClient, variable_id: UUID) -> bool:
    """Delete a holder record by id (a newer record of the same name is another's); False if
    it was already gone."""
    try:
        client.request("DELETE", "/variables/{id}", path_params={"id": variable_id})
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == httpx.codes.NOT_FOUND:
            return False
        raise
    return True


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (its messages reach the run's log), or this module's outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger(__name__)


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None
