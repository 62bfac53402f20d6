"""A deploy killed with SIGKILL while it holds the app lock, with nobody to mark its run (no
worker: a plain `crossdeploy deploy` against a `prefect server start` child), does not make the
next deploy of the app wait for the killed run's lease to lapse (issue 18, item 1): the holder
record names its process, and a waiter on the same host that finds that process gone marks the
run Crashed, frees the lock and goes on at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client

from crossdeploy.app_lock import LEASE_SECONDS, lock_name
from crossdeploy.holder_process import HolderProcess, gone, this_process
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import (
    APP_UID,
    deploy,
    logs_of,
    open_sae_quota,
    save_blocks,
    write_spec,
)
from tests.support.prefect_server import PrefectServer
from tests.support.processes import crossdeploy, stop_group
from tests.support.specs import make_spec, spec_data

pytestmark = pytest.mark.timeout(180)

APP = "lock-killed"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fast_sandbox_process: SandboxProcess
) -> Iterator[PrefectServer]:
    with PrefectServer(tmp_path_factory.mktemp("prefect-killed")).serving() as server:
        with server.api():
            save_blocks(fast_sandbox_process.url)
            open_sae_quota()  # as the harness: the sandbox's minutes are short
        yield server


def _following_change_order(admin: SandboxAdmin, popen: subprocess.Popen[bytes]) -> None:
    """Wait until the deploy created the app and follows its change order."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and popen.poll() is None:
        if any(r.get("action") == "DescribeChangeOrder" for r in admin.requests()):
            return
        time.sleep(0.05)
    raise AssertionError("the deploy never followed its change order")


def test_a_deploy_killed_while_holding_the_lock_does_not_make_the_next_wait(
    server: PrefectServer, fast_admin: SandboxAdmin, tmp_path: Path, record_property: Any
) -> None:
    spec_file = write_spec(tmp_path / f"{APP}.yaml", spec_data(app={"name": APP}))
    spec = make_spec(app={"name": APP})
    name = lock_name(spec, APP_UID)
    fast_admin.set_timing(change_order_seconds=6)  # still following it when killed
    output = tmp_path / "killed-deploy.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    with output.open("wb") as out:
        killed = subprocess.Popen(
            crossdeploy("deploy", str(spec_file)),
            env={**env, "PREFECT_API_URL": server.api_url, "COLUMNS": "200"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        held = server.variable(name, timeout=60, alive=lambda: killed.poll() is None)
        _following_change_order(fast_admin, killed)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(10)
    finally:
        stop_group(killed)
    assert killed.returncode == -signal.SIGKILL, output.read_text()
    assert held["process"]["pid"] == killed.pid, held  # the deploy runs its flow in-process
    fast_admin.set_timing(change_order_seconds=0.6)

    began = time.monotonic()
    with server.api():
        again = deploy(spec)
        lines = [log.message for log in logs_of([again.flow_run_id])]
        with get_client(sync_client=True) as client:
            killed_run = client.read_flow_run(UUID(held["flow_run"]))
            limit = client.read_global_concurrency_limit_by_name(name)
    took = time.monotonic() - began

    assert again.result.outcome in {"deployed", "unchanged"}, again.result
    gone = [line for line in lines if "is gone" in line]
    assert len(gone) == 1, lines
    assert f"pid {held['process']['pid']}" in gone[0] and name in gone[0], gone
    assert killed_run.state is not None and killed_run.state.is_crashed(), killed_run.state
    assert "is gone" in str(killed_run.state.message), killed_run.state.message
    assert took < LEASE_SECONDS / 2, f"the next deploy took {took:.1f} s: {lines}"
    assert limit.active_slots == 0
    apps = fast_admin.state()["app"]["cn-hangzhou"]["sae_app"].values()
    assert [app["AppName"] for app in apps].count(APP) == 1, apps
    record_property(
        "measured",
        f"the deploy after a SIGKILLed holder took {took:.1f} s in all (the killed run's lease "
        f"would have lapsed after {LEASE_SECONDS:g} s)",
    )


def test_only_a_process_gone_from_this_machine_counts_as_gone() -> None:
    """A record of an earlier version (no process) is judged by its lease, as before; so is a
    holder on another machine (another boot or pid namespace), whatever its pid is here."""
    me = this_process()
    assert me is not None
    assert HolderProcess.from_record(me.as_record()) == me
    assert HolderProcess.from_record(None) is None  # an older record: no "process"
    assert not gone(me)
    child = subprocess.Popen(["sleep", "0"])
    child.wait()
    assert gone(HolderProcess(me.host, me.machine, child.pid, me.started))  # no such pid
    assert gone(HolderProcess(me.host, me.machine, me.pid, me.started + 1))  # pid reused
    elsewhere = HolderProcess(me.host, "another-boot/pid:[1]", child.pid, me.started)
    assert not gone(elsewhere)
