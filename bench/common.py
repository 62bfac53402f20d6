"""What every scenario shares: a figure row, sandboxes with timing and latency, blocks, specs,
SDK clients for the baseline, flow runs, and request-log arithmetic.

Each scenario starts its own sandboxes from the bundled demo world (accounts `app` and
`registry`), so one scenario's calls never show up in another's request log.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import yaml

from cli.demo import demo_spec_path
from cli.sandbox_blocks import save_sandbox_blocks
from crossdeploy.spec import DeploySpec, parse_spec
from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import load_world

T = TypeVar("T")
U = TypeVar("U")
Entry = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    scenario: str
    figure: str
    ours: str
    baseline: str
    note: str = ""


@dataclass
class Cloud:
    """A running sandbox, its admin client, and the block names that point at it."""

    process: SandboxProcess
    admin: SandboxAdmin
    prefix: str
    seen: int = 0

    def new_requests(self) -> list[Entry]:
        """The request-log entries since the previous call of this method."""
        log = self.admin.requests()
        new, self.seen = log[self.seen :], len(log)
        return new

    @property
    def endpoint(self) -> str:
        return self.process.endpoint

    def blocks(self) -> dict[str, str]:
        return {"app": f"{self.prefix}-app", "registry": f"{self.prefix}-registry"}


@contextmanager
def clouds(
    *prefixes: str,
    change_order_seconds: float = 3.0,
    latency_ms: int = 0,
    save_blocks: bool = True,
) -> Iterator[list[Cloud]]:
    """Start one sandbox per prefix (concurrently), with the given change-order duration and
    per-call latency on every product, and save `<prefix>-app` / `<prefix>-registry` blocks."""
    with ExitStack() as stack:

        def start(prefix: str) -> Cloud:
            process = SandboxProcess()
            process.start()
            stack.callback(process.stop)
            admin = SandboxAdmin(process.url)
            stack.callback(admin.close)
            admin.set_timing(change_order_seconds=change_order_seconds)
            if latency_ms:
                admin.set_faults({"product": "*", "latency_ms": latency_ms})
            return Cloud(process, admin, prefix)

        started = parallel([partial(start, p) for p in prefixes])
        if save_blocks:  # one after another: concurrent saves race to register the block type
            for cloud in started:
                save_sandbox_blocks(cloud.process.url, prefix=cloud.prefix)
        yield started


def parallel(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run the jobs in threads; results in order; the first error is raised."""
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Run two jobs at once; both results."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.submit(first), pool.submit(second)
        return a.result(), b.result()


def demo_spec(cloud: Cloud, app_name: str = "shop-web", **sections: dict[str, Any]) -> DeploySpec:
    """The bundled demo spec, pointed at `cloud`'s blocks, for app `app_name`."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_spec_path().read_text()))
    data["accounts"] = cloud.blocks()
    data["app"]["name"] = app_name
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return parse_spec(data, "bench spec")


def sdk_config(cloud: Cloud, account: str) -> Any:
    """An official SDK Config for a world account, as a user of the sandbox writes it."""
    from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters

    from blocks.credentials import REGION_HEADER

    key = load_world().account(account).access_keys[0]
    return Config(
        access_key_id=key.id,
        access_key_secret=key.secret,
        endpoint=cloud.endpoint,
        protocol="http",
        region_id="cn-hangzhou",
        global_parameters=GlobalParameters(headers={REGION_HEADER: "cn-hangzhou"}),
        read_timeout=60000,
    )


@dataclass(frozen=True)
class FlowRun:
    wall_seconds: float
    ok: bool
    outcome: str
    started: float
    ended: float


def unused_quota(region: str = "cn-hangzhou") -> None:
    """Reset account A's SAE rate limit to SAE's quota with no slot taken, as at the start of a
    quiet minute: a run measured right after another then waits for no slot the one before
    took (the script it is compared with is not paced at all; the fleet scenario measures the
    pacing)."""
    from crossdeploy.quota import SAE_QUOTA, limit_name, set_limit
    from sandbox.world import load_world

    set_limit(limit_name(load_world().account("app").uid, region), SAE_QUOTA)


def run_flow(spec: DeploySpec) -> FlowRun:
    """Run the cross-account-deploy flow in this process (under the bench's Prefect server)."""
    from flows.cross_account_deploy import cross_account_deploy
    from flows.landing import DeployResult

    started = time.time()
    state = cross_account_deploy(spec=spec, return_state=True)
    ended = time.time()
    result = state.result(raise_on_failure=False)
    outcome = result.outcome if isinstance(result, DeployResult) else type(result).__name__
    return FlowRun(ended - started, state.is_completed(), outcome, started, ended)


# -- request-log arithmetic --------------------------------------------------------------------


def calls(log: list[Entry], action: str | None = None, *, since: float = 0.0) -> list[Entry]:
    return [
        e for e in log if e["received_at"] >= since and (action is None or e["action"] == action)
    ]


def writes(log: list[Entry]) -> int:
    return sum(1 for e in log if e["write"])


def change_orders(cloud: Cloud) -> list[dict[str, Any]]:
    """The change-order documents of account A, oldest first (the sandbox's own record)."""
    orders = cloud.admin.state()["app"]["cn-hangzhou"].get("sae_change_order", {})
    return sorted(orders.values(), key=lambda o: float(o["created_at"]))


def change_order_end(order: dict[str, Any]) -> float:
    """When the order ended on the server: its last task's end (epoch seconds)."""
    return float(order["cursor"])


def fmt(value: float, unit: str = "", digits: int = 2) -> str:
    return f"{value:.{digits}f}{unit}"
