"""The app lock across a Prefect server restart (issue 14, item 2), against a real
`prefect server start` child with the default in-memory lease storage, restarted mid-deploy.

The restart loses the deploy's lease, so its slot stays counted (`active_slots` 1) and releasing
it does nothing; the next deploy of the app must still start at once, not wait out
`timeout_seconds + 600`. Also: slot requests that fail while the server is down (ours, and
Prefect's wrapped in `ConcurrencySlotAcquisitionError`) are asked again by `patiently` (issue
14, item 5).
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import rate_limit

from crossdeploy.app_lock import lock_name
from crossdeploy.prefect_api import patiently
from crossdeploy.quota import occupy_slots
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import APP_UID, deploy, logs_of, open_sae_quota, save_blocks
from tests.support.prefect_server import PrefectServer
from tests.support.specs import make_spec

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fast_sandbox_process: SandboxProcess
) -> Iterator[PrefectServer]:
    with PrefectServer(tmp_path_factory.mktemp("prefect-restart")).serving() as server:
        with server.api():
            save_blocks(fast_sandbox_process.url)
            open_sae_quota()  # as the harness: the sandbox's minutes are short
        yield server


def _held(server: PrefectServer, name: str, timeout: float = 60) -> None:
    """Wait until a run is on record as holding the lock `name`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if httpx.get(f"{server.api_url}/variables/name/{name}", timeout=2).is_success:
                return
        time.sleep(0.05)
    raise AssertionError(f"nobody took {name}\n{server.tail()}")


def test_a_deploy_after_a_server_restart_mid_deploy_starts_at_once(
    server: PrefectServer, fast_admin: SandboxAdmin, record_property: Any
) -> None:
    spec = make_spec(app={"name": "lock-restart"})
    name = lock_name(spec, APP_UID)
    fast_admin.set_faults({"action": "DescribeChangeOrder", "latency_ms": 1500})
    restarted: list[float] = []

    def restart_while_held() -> None:
        _held(server, name)
        began = time.monotonic()
        server.restart()
        restarted.append(time.monotonic() - began)

    restarter = threading.Thread(target=restart_while_held)
    restarter.start()
    with server.api():
        first = deploy(spec)
    restarter.join(90)
    fast_admin.clear_faults()
    assert restarted, "the server was not restarted while the deploy held the lock"
    assert first.result.outcome == "deployed"
    with server.api(), get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    # The restart lost the lease: its slot is still counted, with nobody holding it.
    assert limit.active_slots == 1

    began = time.monotonic()
    with server.api():
        second = deploy(spec)
        lines = [log.message for log in logs_of([second.flow_run_id])]
    took = time.monotonic() - began
    assert second.result.outcome == "unchanged"
    waits = [
        float(m.group(1)) for line in lines if (m := re.search(r"after waiting (\S+) s", line))
    ]
    assert len(waits) == 1, lines
    assert any("slot was given back" in line for line in lines), lines
    with server.api(), get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    assert limit.active_slots == 0
    record_property(
        "measured",
        f"server restart took {restarted[0]:.1f} s; the next deploy of the app waited "
        f"{waits[0]:.1f} s for the lock (whole run {took:.1f} s) instead of timeout_seconds + 600",
    )


def test_slot_requests_made_while_the_server_is_down_are_asked_again(
    server: PrefectServer,
) -> None:
    """The server down while rate-limit slots are asked for, both by the quota's own request
    (`occupy_slots`: a connection error) and by Prefect's (`rate_limit`: Prefect wraps the
    connection error in ConcurrencySlotAcquisitionError); `patiently` asks again until the
    server is back, and both get their slot."""
    name = "lock-test-rate"
    with server.api(), get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=5, slot_decay_per_second=5.0)
        )
    server.stop()
    outcome: list[BaseException | float] = []
    began = time.monotonic()

    def take(ask: Callable[[], None]) -> None:
        try:
            patiently(ask)
            outcome.append(time.monotonic() - began)
        except BaseException as exc:
            outcome.append(exc)

    askers = [lambda: occupy_slots(name, 1), lambda: rate_limit(name, strict=True)]
    with server.api():
        takers = [
            threading.Thread(target=contextvars.copy_context().run, args=(take, ask))
            for ask in askers
        ]
        for taker in takers:
            taker.start()
    time.sleep(2)
    server.start()
    for taker in takers:
        taker.join(60)
    assert len(outcome) == 2 and all(isinstance(o, float) for o in outcome), outcome
