"""A lease renewal that finds the Prefect server gone asks again until it answers (issue 19): the
run keeps its app lock while the lease lasts, against a real `prefect server start` child with
file-backed leases (so the lease outlives the server's restart).

The server is stopped just before the renewal is due (three quarters of the 60 s lease) and
started again. Back before the lease expires, the run keeps the lock and finishes; back after
(a machine too loaded to start a server in time), the run is stopped with the lock named.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from crossdeploy.app_lock import LEASE_SECONDS, RENEW_FRACTION, app_lock, lock_name
from crossdeploy.spec import DeploySpec
from tests.support.deploy_support import APP_UID, logs_of
from tests.support.prefect_server import PrefectServer
from tests.support.specs import make_spec

pytestmark = pytest.mark.timeout(240)

FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"


@flow(name="hold-app-lock-across-a-restart")
def hold_app_lock(spec: DeploySpec, seconds: float) -> None:
    """Hold the app's lock for `seconds`."""
    run_id = flow_run.get_id()
    with app_lock(spec, APP_UID, flow_run_id=UUID(run_id) if run_id else None, wait_seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-busy-renewal")
    settings = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": FILE_LEASES}
    with PrefectServer(home, settings).serving() as server:
        yield server


def test_a_renewal_meeting_a_stopped_server_asks_again_and_keeps_the_lock(
    server: PrefectServer, record_property: Any
) -> None:
    spec = make_spec(app={"name": "lock-renew-down"})
    name = lock_name(spec, APP_UID)
    out: list[State[Any]] = []
    with server.api():
        context = contextvars.copy_context()
    holder = threading.Thread(
        target=context.run,
        args=(lambda: out.append(hold_app_lock(spec, LEASE_SECONDS * 1.2, return_state=True)),),
    )
    holder.start()
    record = server.variable(name, timeout=60)
    granted = time.monotonic()  # a little after the lease was granted: its renewal is sooner
    due = granted + LEASE_SECONDS * RENEW_FRACTION
    time.sleep(max(0.0, due - 3 - time.monotonic()))
    server.stop()
    time.sleep(max(0.0, due + 1 - time.monotonic()))  # the renewal meets no server
    server.start()
    back = time.monotonic() - granted
    holder.join(150)

    state = out[0]
    with server.api():
        errors = [log.message for log in logs_of([UUID(record["flow_run"])]) if log.level >= 40]
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    assert limit.active_slots == 0
    # The lease was granted before `granted`: a server back 2 s before it expires is in time.
    if back < LEASE_SECONDS - 2:
        assert state.is_completed(), (state, errors)
        assert not [line for line in errors if "lost the app lock" in line], errors
        outcome = "the renewal asked again until it answered; the run kept its lock"
    elif back > LEASE_SECONDS:
        assert state.is_failed() and name in str(state.message), (state, errors)
        outcome = "the lease expired first; the run was stopped with the lock named"
    else:
        outcome = f"back at the lease's end; the run ended {state.type.value}"
    record_property(
        "measured",
        f"server stopped {LEASE_SECONDS * RENEW_FRACTION - 3:g} s into the lease and back "
        f"{back:.1f} s into it: {outcome}",
    )
