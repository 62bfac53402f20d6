"""A fleet across Prefect workers, end to end, with real parts and nothing mocked.

One module-scoped stack, as an operator starts it: `prefect server start` (its own SQLite),
`prefect work-pool create crossdeploy --type process`, `prefect --no-prompt deploy --all` from the
repository root, TWO `prefect worker start --pool crossdeploy --limit 2` processes (each runs at
most two flow runs at once, so a fleet of four needs both), and a sandbox cloud with the demo world
(change orders of CHANGE_ORDER_SECONDS) whose credential blocks are saved to that server. The
fleet's parent runs `fleet_deploy(app_deployment="fleet-app/fleet-app")` in a process of its own,
as `crossdeploy deploy FLEET --app-deployment ...` would; each app lands in a `fleet-app` run
that one of the workers took.

  (a) every app lands, none is created twice or deployed again (the sandbox's request log), and
      both workers ran child runs;
  (b) a worker dies mid-fleet: SIGKILL of its process group and of the flow runs it started
      (they run in sessions of their own: the machine is gone). The fleet still reports every
      app: its dead children, silent past `stale_seconds`, are marked Crashed by the parent and
      run once more on the other worker; no app is created twice; a re-run of the fleet finds
      every app landed and writes nothing.

Every process runs in its own process group and carries a marker in its environment (the workers
one each, which their flow runs inherit); at the end the groups are stopped and anything left with
the marker is killed by pid.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort

from bench.fleet import fleet_data
from cli.sandbox_blocks import save_sandbox_blocks
from crossdeploy.plan import Change
from flows.fleet_outcome import AppOutcome, outcome_from_artifact
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import open_sae_quota
from tests.support.prefect_server import PrefectServer
from tests.support.processes import (
    LoggedProcess,
    kill_marked,
    stop_group,
    succeeded,
    wait_until,
    worker_ran,
)
from tests.support.worlds import demo_world_data, write_world

pytestmark = pytest.mark.timeout(300)

BIN = Path(sys.executable).parent
MARKER = "CROSSDEPLOY_FLEET_WORKERS_RUN"
WORKER_MARKER = "CROSSDEPLOY_FLEET_WORKER"
APP_DEPLOYMENT = "fleet-app/fleet-app"
CHANGE_ORDER_SECONDS = 2.0
APPS = 4
"""Two more than one worker runs at once (`--limit 2`): a fleet that needs both workers."""
STALE_SECONDS = 45.0
"""The parent's patience with a silent child: above Prefect's 30 s heartbeat, with slack for a
loaded machine."""

PARENT = """
import json, sys
from crossdeploy.fleet_spec import parse_fleet
from flows.fleet_deploy import FleetError, fleet_deploy
state = fleet_deploy(fleet=parse_fleet(json.loads(sys.argv[1])), app_deployment=sys.argv[2],
                     stale_seconds=float(sys.argv[3]), return_state=True)
got = state.result(raise_on_failure=False)
result = got.result if isinstance(got, FleetError) else got
apps = [[a.name, a.outcome, a.message] for a in result.apps] if result is not None else []
print("RESULT " + json.dumps({"state": state.name, "message": state.message, "apps": apps,
                              "writes": result.writes if result is not None else -1}))
"""


@dataclass
class Stack:
    server: PrefectServer
    sandbox: SandboxProcess
    env: dict[str, str]
    logs: Path
    workers: dict[str, LoggedProcess] = field(default_factory=dict)

    def tails(self) -> str:
        return "\n".join([*(w.tail() for w in self.workers.values()), self.server.tail()])

    def start_worker(self, name: str) -> LoggedProcess:
        args = [str(BIN / "prefect"), "worker", "start", "--pool", "crossdeploy"]
        args += ["--name", name, "--limit", "2"]
        env = {**self.env, WORKER_MARKER: name}
        self.workers[name] = LoggedProcess(name, args, env, self.logs)
        return self.workers[name]

    def kill_worker(self, name: str) -> None:
        """The worker's machine is gone: its process group and every flow run it started."""
        proc = self.workers[name]
        with suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        kill_marked(WORKER_MARKER, name)
        proc.popen.wait(10)

    def parent(self, fleet: dict[str, Any], name: str) -> LoggedProcess:
        args = [str(BIN / "python"), "-c", PARENT, json.dumps(fleet), APP_DEPLOYMENT]
        env = {**self.env, "PREFECT_HOME": str(self.logs / f"home-{name}")}
        return LoggedProcess(name, [*args, str(STALE_SECONDS)], env, self.logs)

    def children(self, parent_name: str) -> list[FlowRun]:
        """The fleet-app runs of the fleet run named `parent_name` (the newest of that name)."""
        with self.server.api(), get_client(sync_client=True) as client:
            (parent, *_) = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[parent_name])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            )
            flt = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id]))
            return list(client.read_flow_runs(flow_run_filter=flt))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("fleet-workers")
    logs = tmp / "logs"
    logs.mkdir()
    marker = uuid.uuid4().hex
    settings = {
        MARKER: marker,
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
            "prefect.server.concurrency.lease_storage.filesystem"
        ),
    }
    server = PrefectServer(tmp / "prefect-home", settings)
    world_path = write_world(demo_world_data(change_order_seconds=CHANGE_ORDER_SECONDS), tmp)
    sandbox = SandboxProcess(world=world_path, state=tmp / "sandbox.sqlite")
    stack: Stack | None = None
    try:
        server.start()
        sandbox.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))}
        env |= {
            MARKER: marker,
            "PREFECT_HOME": str(tmp / "client-home"),
            "PREFECT_API_URL": server.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }
        stack = Stack(server, sandbox, env, logs)
        prefect = str(BIN / "prefect")
        succeeded([prefect, "work-pool", "create", "crossdeploy", "--type", "process"], env)
        succeeded([prefect, "--no-prompt", "deploy", "--all"], env)
        with server.api():
            save_sandbox_blocks(sandbox.url, world_path)
            open_sae_quota()  # the sandbox's minutes are short: its operator's SAE limits
        stack.start_worker("w1")
        stack.start_worker("w2")
        yield stack
    finally:
        if stack is not None:
            for proc in stack.workers.values():
                stop_group(proc.popen)
        server.stop()
        sandbox.stop()
        kill_marked(MARKER, marker)


def fleet(name: str, apps: list[str]) -> dict[str, Any]:
    return fleet_data({"app": "sandbox-app", "registry": "sandbox-registry"}, name, apps)


def finish(stack: Stack, proc: LoggedProcess, timeout: float = 200) -> dict[str, Any]:
    wait_until(
        f"{proc.name} to finish", lambda: proc.popen.poll() is not None, timeout, stack.tails()
    )
    lines = [line for line in proc.text().splitlines() if line.startswith("RESULT ")]
    assert lines, f"{proc.tail(6000)}\n{stack.tails()}"
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def writes(stack: Stack, apps: list[str]) -> tuple[Counter[str], int]:
    """CreateApplication per app name, and DeployApplication calls (answered 200)."""
    admin = SandboxAdmin(stack.sandbox.url)
    try:
        log = admin.requests()
    finally:
        admin.close()
    created = Counter(
        str(e["params"].get("AppName")) for e in log if e["action"] == "CreateApplication"
    )
    ids = {
        str(e["params"].get("AppId"))
        for e in log
        if e["action"] == "DeployApplication" and e["status"] == 200
    }
    return Counter({a: created[a] for a in apps}), len(ids)


def ran_on(stack: Stack, runs: list[FlowRun]) -> dict[str, set[str]]:
    """Worker name -> the ids of these runs its log says it started."""
    logs = {name: proc.text() for name, proc in stack.workers.items()}
    return {name: {str(r.id) for r in runs if worker_ran(log, r.id)} for name, log in logs.items()}


def test_a_fleet_lands_on_both_workers_each_app_once(stack: Stack) -> None:
    apps = [f"wk-a-{i}" for i in range(APPS)]
    spec = fleet("wka", apps)
    result = finish(stack, stack.parent(spec, "parent-a"))
    outcomes = {name: (kind, message) for name, kind, message in result["apps"]}
    assert result["state"] == "Completed", result
    assert {name: kind for name, (kind, _) in outcomes.items()} == dict.fromkeys(apps, "deployed")
    created, deployed = writes(stack, apps)
    assert created == Counter(dict.fromkeys(apps, 1)), created
    assert deployed == 0

    children = stack.children("fleet-wka")
    assert sorted(c.name for c in children) == sorted(
        f"{app}@1.1 in cn-hangzhou:demo" for app in apps
    )
    assert all(c.state is not None and c.state.is_completed() for c in children)
    where = ran_on(stack, children)
    assert where["w1"] and where["w2"], where  # both workers took some of the fleet


def test_b_a_worker_killed_mid_fleet_loses_no_app(stack: Stack) -> None:
    apps = [f"wk-b-{i}" for i in range(APPS)]
    spec = fleet("wkb", apps)
    proc = stack.parent(spec, "parent-b")

    def w2_busy() -> set[str] | None:
        if proc.popen.poll() is not None:
            raise AssertionError(f"the fleet ended before a worker could be killed\n{proc.tail()}")
        with suppress(ValueError):
            running = [c for c in stack.children("fleet-wkb") if c.state and c.state.is_running()]
            mine = ran_on(stack, running)["w2"]
            return mine or None
        return None

    killed = wait_until("worker w2 to run a child", w2_busy, 90, stack.tails())
    stack.kill_worker("w2")
    result = finish(stack, proc, timeout=240)
    outcomes = {name: (kind, message) for name, kind, message in result["apps"]}
    assert set(outcomes) == set(apps), result
    for name, (kind, message) in outcomes.items():  # landed, or failed with the cause
        assert kind in ("deployed", "unchanged") or "heartbeat" in message, (name, message)

    children = stack.children("fleet-wkb")
    crashed = [c for c in children if c.state is not None and c.state.is_crashed()]
    state_of = {str(c.id): c.state.type.value if c.state else None for c in children}
    # A child seen running on w2 was killed with it (Crashed), unless it finished in the moment
    # between the look and the kill; w2 may have started others meanwhile (its log names them
    # all). Only w2's children crashed, and at least one of them was killed mid-run.
    on_w2 = ran_on(stack, children)["w2"]
    assert killed <= on_w2, (killed, on_w2)
    assert all(state_of[i] in ("CRASHED", "COMPLETED") for i in killed), state_of
    assert {str(c.id) for c in crashed} <= on_w2, (on_w2, state_of)
    assert crashed, (on_w2, state_of)
    for child in crashed:
        assert child.state is not None
        assert "no heartbeat" in (child.state.message or ""), child.state.message
    created, deployed = writes(stack, apps)
    assert max(created.values()) <= 1 and deployed == 0, (created, deployed)

    again = finish(stack, stack.parent(spec, "parent-b-again"))
    assert again["state"] == "Completed", again
    kinds = {name: kind for name, kind, _ in again["apps"]}
    landed_first = {name for name, (kind, _) in outcomes.items() if kind != "failed"}
    assert set(kinds) == set(apps) and set(kinds.values()) <= {"unchanged", "deployed"}, again
    assert all(kinds[a] == "unchanged" for a in landed_first), again
    created_again, deployed_again = writes(stack, apps)
    assert created_again == Counter(dict.fromkeys(apps, 1)), created_again  # none twice
    assert deployed_again == 0


def test_an_outcome_reads_back_from_its_artifact_row() -> None:
    """The channel from child to parent: the table artifact's JSON gives the same AppOutcome."""
    outcome = AppOutcome(
        "shop-web",
        "cn-hangzhou:demo",
        "cn-hangzhou",
        "deployed",
        "shop-web is RUNNING: 1 of 1 instances running",
        "app-1",
        "co-1",
        (Change("A", "sae.application", "app-1", "created", "shop-web in cn-hangzhou:demo"),),
    )
    assert outcome_from_artifact(json.dumps([outcome.row()])) == outcome
    assert outcome_from_artifact("[]") is None
