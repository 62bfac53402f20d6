"""Fleet across workers: the same fleet (N = 20 apps, 1-second change orders) run by
`fleet_deploy(app_deployment="fleet-app/fleet-app")`, its apps landed by `prefect worker start`
processes of a process work pool: first by one worker, then by two. Each worker takes at most
WORKER_LIMIT runs at once (`--limit`), standing for one machine's capacity; on this machine both
workers share its cores, so the figure shows how the work is shared, not two machines' speed.

The pool, the `fleet-app` deployment (`prefect --no-prompt deploy --name fleet-app`, this
repository's prefect.yaml) and the workers are made against the bench's own Prefect server; the
parent runs in this process. The quota is raised (the account's limit set to RAISED, no
throttling in the sandbox) so it is not the limit. Reported: wall time, apps that did not land,
and how many child runs each worker ran (not counting a run it saw scheduled and left to the
worker that took it first). No assertions: figures only.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Cloud, Figure, clouds, fmt
from bench.fleet import fleet_data
from tests.support.processes import LoggedProcess, kill_marked, succeeded, worker_ran

N = 20
N_QUICK = 10
WORKER_LIMIT = 4
CHANGE_ORDER_SECONDS = 1.0
POOL = "crossdeploy"
APP_DEPLOYMENT = "fleet-app/fleet-app"
MARKER = "CROSSDEPLOY_BENCH_WORKER"
BIN = Path(sys.executable).parent


def _env(home: Path, marker: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {
        MARKER: marker,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def _workers(count: int, env: dict[str, str], logs: Path) -> Iterator[list[LoggedProcess]]:
    """`count` process workers of the pool, each in its own session, logging to `logs`."""
    started: list[LoggedProcess] = []
    try:
        for i in range(count):
            name = f"bench-{i}-{uuid.uuid4().hex[:6]}"
            args = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name]
            started.append(LoggedProcess(name, [*args, "--limit", str(WORKER_LIMIT)], env, logs))
        yield started
    finally:
        for worker in started:
            worker.stop()


def _fleet(
    cloud: Cloud, n: int, name: str, workers: list[LoggedProcess]
) -> tuple[float, int, list[int]]:
    """Wall time, apps that did not land, child runs each worker submitted (its log says)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from crossdeploy.fleet_spec import parse_fleet
    from flows.fleet_deploy import FleetError, FleetResult, fleet_deploy

    apps = [f"{name}-{i:03d}" for i in range(n)]
    fleet = parse_fleet(fleet_data(cloud.blocks(), name, apps), "bench fleet")
    started = time.monotonic()
    state = fleet_deploy(fleet=fleet, app_deployment=APP_DEPLOYMENT, return_state=True)
    wall = time.monotonic() - started
    outcome = state.result(raise_on_failure=False)
    result = outcome.result if isinstance(outcome, FleetError) else outcome
    failed = len(result.failed) if isinstance(result, FleetResult) else n
    parent = state.state_details.flow_run_id
    assert parent is not None
    with get_client(sync_client=True) as client:
        flt = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
        children = [str(r.id) for r in client.read_flow_runs(flow_run_filter=flt)]
    texts = [worker.text() for worker in workers]
    per_worker = [sum(worker_ran(text, child) for child in children) for text in texts]
    return wall, failed, per_worker


def run(quick: bool = False) -> list[Figure]:
    from crossdeploy.quota import Quota, limit_name, set_limit
    from sandbox.world import load_world

    n = N_QUICK if quick else N
    marker = uuid.uuid4().hex
    measured: dict[int, tuple[float, int, list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        env = _env(Path(tmp) / "home", marker)
        succeeded([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env)
        succeeded([str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "fleet-app"], env)
        uid = load_world().account("app").uid
        set_limit(limit_name(uid, "cn-hangzhou"), Quota(6000, 60.0))  # not the limit here
        try:
            for count in (1, 2):
                name = f"workers{count}"
                with (
                    clouds(name, change_order_seconds=CHANGE_ORDER_SECONDS) as (cloud,),
                    _workers(count, env, Path(tmp)) as workers,
                ):
                    measured[count] = _fleet(cloud, n, name, workers)
        finally:
            kill_marked(MARKER, marker)
    (one_wall, one_failed, one_runs), (two_wall, two_failed, two_runs) = measured[1], measured[2]
    scenario = f"fleet across workers N={n}"
    limit = f"--limit {WORKER_LIMIT} per worker"
    walls = (fmt(two_wall), fmt(one_wall))
    return [
        Figure(scenario, "wall time, s (ours: 2 workers, baseline: 1)", *walls, limit),
        Figure(
            scenario,
            "speed-up of 2 workers over 1",
            f"{one_wall / two_wall:.2f}x",
            "1.00x",
            f"one machine, {os.cpu_count()} cores: both workers share them",
        ),
        Figure(scenario, "apps failed", str(two_failed), str(one_failed), "must be 0"),
        Figure(
            scenario,
            "child runs per worker",
            " + ".join(map(str, two_runs)),
            " + ".join(map(str, one_runs)),
        ),
    ]
