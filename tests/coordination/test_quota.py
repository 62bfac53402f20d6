"""SAE's quota binds every flow (crossdeploy/quota.py): one rate limit per account and region,
one slot per SAE call, whichever flow makes it; the limit is the operator's once it exists.

Against the fast sandbox and the session's Prefect test server. Slots are counted on a limit
that (nearly) never decays, so what the flows took can be compared with the SAE calls the
sandbox logged; the quota itself is checked by running a fleet and a single deploy of the same
account at once (the single deploy in a process of its own, through the CLI) against a sandbox
that throttles SAE as SAE does, scaled down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.settings import PREFECT_API_URL

from crossdeploy.fleet_spec import parse_fleet
from crossdeploy.quota import (
    SAE_QUOTA,
    Quota,
    asks,
    counted,
    ensure_limit,
    limit_name,
    limited,
    set_limit,
    take_ahead,
    take_slot,
    unused,
)
from flows.fleet_deploy import FleetResult, fleet_deploy
from flows.reconcile import ReconcileResult, reconcile
from sandbox.testing import SandboxAdmin
from tests.support.deploy_support import (
    APP_UID,
    deploy,
    open_sae_quota,
    sae_quota,
    tear_down,
    write_spec,
)
from tests.support.processes import wait_until
from tests.support.specs import DEMO_SPEC, make_spec

REGION = "cn-hangzhou"
LIMIT = limit_name(APP_UID, REGION)
BIN = Path(sys.executable).parent


def _limit() -> GlobalConcurrencyLimitResponse:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(LIMIT)


def _update(**fields: Any) -> None:
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(LIMIT, GlobalConcurrencyLimitUpdate(**fields))


@pytest.fixture
def own_limit(world: SandboxAdmin) -> Iterator[None]:
    """The test changes the account's limit as an operator would; it is ample again after."""
    yield
    open_sae_quota(regions=(REGION,))


def _sae_calls(admin: SandboxAdmin, since: int) -> list[dict[str, Any]]:
    return [r for r in admin.requests()[since:] if r["product"] == "sae"]


def test_every_flow_takes_one_slot_per_sae_call(world: SandboxAdmin, own_limit: None) -> None:
    """Deploy, reconcile with apply (a deploy subflow under it) and teardown: each takes
    exactly as many slots as it made SAE calls, no fewer (every call is counted) and no more (a
    subflow never takes a second slot for its calls), besides any slot asked for ahead of a
    call that lapsed before the call came (`unused`: the process counts them)."""
    _update(limit=1_000_000, slot_decay_per_second=1e-6, active=True)  # a counter, in effect
    changed = make_spec(app={"replicas": 3})
    runs: dict[str, Callable[[], object]] = {
        "deploy": lambda: deploy(make_spec()).result,
        "reconcile apply": lambda: reconcile(specs=[changed], apply=True),
        "teardown": lambda: tear_down(changed),
    }
    counted = {}
    for name, run in runs.items():
        _update(active_slots=0)
        since, dropped = len(world.requests()), unused(LIMIT)
        done = run()
        if isinstance(done, ReconcileResult):
            assert [s.applied for s in done.specs] == ["deployed"]
        slots = _limit().active_slots - (unused(LIMIT) - dropped)
        counted[name] = (len(_sae_calls(world, since)), slots)
    assert all(calls > 0 for calls, _ in counted.values()), counted
    assert {name: slots for name, (_, slots) in counted.items()} == {
        name: calls for name, (calls, _) in counted.items()
    }, f"SAE calls vs slots taken: {counted}"


def test_the_limit_is_created_when_missing_and_then_left_as_the_operator_set_it(
    world: SandboxAdmin, own_limit: None
) -> None:
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(LIMIT)
    assert deploy(make_spec(), dry_run=True).result.outcome == "planned"
    created = _limit()
    assert (created.limit, created.active) == (SAE_QUOTA.burst, True) == (3, True)
    assert created.slot_decay_per_second == pytest.approx(SAE_QUOTA.decay_per_second)

    # The operator lowers it to one slot that never comes back, and deactivates it: a run keeps
    # all three settings, and is not held by a limit that is off (Prefect grants at once).
    _update(limit=1, slot_decay_per_second=1e-6, active=False)
    assert deploy(make_spec(), dry_run=True).result.outcome == "planned"
    kept = _limit()
    assert (kept.limit, kept.slot_decay_per_second, kept.active) == (1, 1e-6, False)


def test_a_process_asks_for_slots_when_they_are_free_and_is_refused_at_most_once(
    prefect_harness: None,
) -> None:
    """Prefect decays a limit's slots as floor(rate x seconds since its row was last written),
    and a refused ask writes the row too: asking early throws the decay away. Eight threads
    take thirty slots of a limit of three: the process asks when its own count says they are
    free, so only its first probe of a limit it knew nothing of can be refused."""
    name = f"pacing-{time.monotonic_ns()}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=3, slot_decay_per_second=20.0)
        )
    limit = ensure_limit(name)
    assert (limit.most, limit.decay_per_second) == (3, 20.0)

    def take_four() -> None:
        for _ in range(4):
            take_slot(limit)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(take_four) for _ in range(8)]:
            future.result()
    asked, refused = asks(name)
    assert refused <= 1, f"{refused} of {asked} asks refused"
    assert asked - refused <= 32  # no slot taken twice for one call


def test_a_limit_the_operator_resets_is_asked_at_once(prefect_harness: None) -> None:
    """After `set_limit` (an operator's reset: no slot taken) a process that had filled the
    limit forgets its own count of it, so its next call asks at once instead of waiting for
    slots its count still holds (a run measured after another would wait seconds for nothing)."""
    name = f"reset-{time.monotonic_ns()}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=3, slot_decay_per_second=0.5)
        )
    limit = ensure_limit(name)
    for _ in range(4):  # the fourth is refused once: the count is known from then on
        take_slot(limit)
    assert asks(name)[1] == 1
    assert (counted(limit) or 0) >= 2
    set_limit(name, Quota(3, 6.0))
    assert counted(limit) is None
    reset = ensure_limit(name)
    take_slot(reset)
    assert asks(name)[1] == 1  # asked at once and granted


def test_a_slot_asked_for_ahead_serves_the_call_that_follows(prefect_harness: None) -> None:
    """`take_ahead` asks for the next call's slot in the background, so the call finds it
    taken and asks nothing; once the process's own count says the limit is full, it asks
    nothing ahead (the call would only queue behind the slot)."""
    name = f"ahead-{time.monotonic_ns()}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=3, slot_decay_per_second=0.5)
        )
    limit = ensure_limit(name)
    with limited(limit):
        take_ahead()
        wait_until("the slot asked for ahead", lambda: asks(name)[0] == 1, 10, every=0.1)
        take_slot(limit)
        assert (asks(name), unused(name)) == ((1, 0), 0)  # the call used the slot asked ahead

        for _ in range(3):  # the third is refused once: the count is known from then on
            take_slot(limit)
        assert asks(name)[1] == 1
        assert counted(limit) == limit.most
        take_ahead()
        time.sleep(0.2)
        assert asks(name)[0] == 5  # 1 ahead, 3 granted, 1 refused: nothing more
    take_ahead()  # outside a paced context: nothing to ask for
    assert asks(name)[0] == 5


THROTTLE_CALLS = 8
WINDOW_SECONDS = 2.0
QUOTA = Quota(THROTTLE_CALLS, WINDOW_SECONDS)
FLEET_APPS = [f"shop-q{i}" for i in range(6)]


def _most_in_window(times: list[float], window: float) -> int:
    """The most calls in any `window` seconds."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def _span(calls: list[dict[str, Any]]) -> tuple[float, float]:
    times = [float(c["received_at"]) for c in calls]
    return min(times), max(times)


def test_a_fleet_and_a_single_deploy_of_one_account_stay_within_its_quota(
    world: SandboxAdmin, own_limit: None, tmp_path: Path
) -> None:
    """SAE throttles at 8 calls in any 2 s (a scaled-down 60 a minute) and the operator set the
    account's limit to that quota. While a deploy of one app runs in a process of its own
    (`crossdeploy deploy`), a fleet of six apps lands: not one Throttling.User, and the busiest
    window stays within the quota. The fleet starts once the single deploy reads its app (the
    CLI's start takes seconds on a loaded machine), and its change order of 4 s outlasts the
    fleet's start."""
    web = deploy(make_spec()).result  # its access in place first: the runs below share none
    more = {**DEMO_SPEC, "app": {**DEMO_SPEC["app"], "replicas": 3}}
    spec_path = write_spec(tmp_path / "web.yaml", more)
    fleet = parse_fleet(
        {
            "name": "quota",
            "accounts": DEMO_SPEC["accounts"],
            "image": DEMO_SPEC["image"],
            "defaults": {"region": REGION, "namespace": "cn-hangzhou:demo", "replicas": 1},
            "apps": [{"name": name} for name in FLEET_APPS],
        }
    )
    world.set_faults(
        {"product": "sae", "throttle_per_minute": THROTTLE_CALLS, "window_seconds": WINDOW_SECONDS}
    )
    world.set_timing(change_order_seconds=4)
    since = len(world.requests())
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    options = {"quota_calls": QUOTA.calls, "quota_window_seconds": QUOTA.window_seconds}
    with sae_quota(QUOTA, REGION), ThreadPoolExecutor(1) as pool:
        command = [str(BIN / "crossdeploy"), "deploy", str(spec_path)]
        running = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

        def single_reading_its_app() -> bool:
            return running.poll() is not None or any(
                r["params"].get("AppId") == web.app_id for r in world.requests()[since:]
            )

        wait_until("the single deploy to read its app", single_reading_its_app, 60, every=0.1)
        landing = pool.submit(fleet_deploy, fleet=fleet, return_state=True, **options)
        output, _ = running.communicate(timeout=120)
        single = subprocess.CompletedProcess(command, running.returncode, output, "")
        state = landing.result(timeout=120)
    assert single.returncode == 0, single.stdout + single.stderr
    assert state.is_completed(), state.result(raise_on_failure=False)
    result = state.result()
    assert isinstance(result, FleetResult)
    assert {a.outcome for a in result.apps} == {"deployed"}

    log = world.requests()[since:]
    assert [r for r in log if r.get("code") == "Throttling.User"] == []
    sae = [r for r in log if r["product"] == "sae"]
    fleet_ids = {a.app_id for a in result.apps}
    mine = [c for c in sae if c["params"].get("AppId") == web.app_id]
    theirs = [
        c
        for c in sae
        if c["params"].get("AppId") in fleet_ids or c["params"].get("AppName") in FLEET_APPS
    ]
    assert mine and theirs
    (mine_first, mine_last), (theirs_first, theirs_last) = _span(mine), _span(theirs)
    assert mine_first < theirs_last and theirs_first < mine_last, (
        f"the two runs did not overlap: {_span(mine)} {_span(theirs)}"
    )

    times = [float(c["received_at"]) for c in sae]
    busiest = _most_in_window(times, WINDOW_SECONDS)
    span = max(times) - min(times)
    rate = (len(times) - 1) / span
    print(
        f"\n{len(times)} SAE calls ({len(mine)} of the single deploy's app) in {span:.1f} s: "
        f"{rate:.2f}/s against the quota's {QUOTA.calls_per_second:.2f}/s "
        f"({rate / QUOTA.calls_per_second:.0%}); busiest {WINDOW_SECONDS:g} s: {busiest} calls "
        f"(quota {THROTTLE_CALLS})"
    )
    assert busiest <= THROTTLE_CALLS
