"""A lost app lock stops the run that held it, clearly (issue 14, item 2), against a real
`prefect server start` child.

The lease is revoked through Prefect's API while a run holds the lock; the lock's renewal (every
three quarters of the 60 s lease) then fails, and the run ends Failed with a message naming the
lock, not with a traceback from a dead thread. Meanwhile a second run of the same app, finding
the slot free again, still waits: the first run's holder record keeps it out until that run is
over. And a subflow taking the lock its parent holds goes straight in.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from crossdeploy.app_lock import app_lock, lock_name
from crossdeploy.spec import DeploySpec
from tests.support.deploy_support import APP_UID, logs_of
from tests.support.prefect_server import PrefectServer
from tests.support.specs import make_spec

pytestmark = pytest.mark.timeout(180)


@flow(name="hold-app-lock")
def hold_app_lock(spec: DeploySpec, seconds: float) -> float:
    """Hold the app's lock for `seconds`; returns the time (epoch) it got in."""
    run_id = flow_run.get_id()
    with app_lock(spec, APP_UID, flow_run_id=UUID(run_id) if run_id else None, wait_seconds=120):
        got_in = time.time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
    return got_in


@flow(name="hold-app-lock-twice")
def hold_app_lock_twice(spec: DeploySpec) -> float:
    """Hold the lock, then run a subflow that takes the same lock."""
    run_id = flow_run.get_id()
    with app_lock(spec, APP_UID, flow_run_id=UUID(run_id) if run_id else None, wait_seconds=5):
        return hold_app_lock(spec, 0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with PrefectServer(tmp_path_factory.mktemp("prefect-renewal")).serving() as server:
        yield server


def _in_thread(server: PrefectServer, fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    with server.api():
        context = contextvars.copy_context()

    def run() -> None:
        out.append(fn(*args, return_state=True))

    thread = threading.Thread(target=context.run, args=(run,))
    thread.start()
    return thread, out


def test_a_revoked_lease_stops_its_run_clearly_and_keeps_the_next_out(
    server: PrefectServer, capfd: pytest.CaptureFixture[str], record_property: Any
) -> None:
    spec = make_spec(app={"name": "lock-renewal"})
    name = lock_name(spec, APP_UID)
    holder, held = _in_thread(server, hold_app_lock, spec, 150.0)
    record = server.variable(name, timeout=30)
    revoked = time.monotonic()
    with server.api(), get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(UUID(record["lease"]))
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
    second, got = _in_thread(server, hold_app_lock, spec, 0.0)
    holder.join(120)
    stopped = time.monotonic() - revoked
    second.join(60)

    state: State[Any] = held[0]
    assert state.is_failed(), state
    assert state.message and name in state.message and "lost the app lock" in state.message
    assert stopped < 120, "the run outlived its lost lease to the end of its work"
    later: State[Any] = got[0]
    assert later.is_completed(), later
    with server.api(), get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
        failure = min(
            log.timestamp for log in logs_of([UUID(record["flow_run"])]) if log.level >= 40
        )
    got_in = datetime.fromtimestamp(later.result(), tz=UTC)
    # The slot was free from the revocation on; the holder record kept the second run out
    # until the first was stopped (its renewal failed: that error is the first run's log).
    assert got_in >= failure, "the second run got in while the first still held the app"
    assert limit.active_slots == 0
    assert "Exception in thread" not in capfd.readouterr().err
    record_property(
        "measured",
        f"revoked lease noticed and the run stopped {stopped:.1f} s later (renewed every "
        f"45 s); the second run got in {(got_in - failure).total_seconds():.1f} s "
        "after the first run's renewal failed",
    )


def test_a_subflow_goes_straight_into_the_lock_its_parent_holds(server: PrefectServer) -> None:
    spec = make_spec(app={"name": "lock-nested"})
    thread, out = _in_thread(server, hold_app_lock_twice, spec)
    thread.join(30)
    state: State[Any] = out[0]
    assert state.is_completed(), state
