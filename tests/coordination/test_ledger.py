"""200 changing deploys of one app against the ledger (crossdeploy/ledger.py): the session's
Prefect server and a sandbox whose change orders take no time.

Two image tags in turn: every deploy starts a change order, and the ledger stays exactly as the
first deploy left it, far from a Prefect Variable's 5,000 characters; teardown then leaves both
accounts as the world began.

Speed: a full deploy flow run costs about 0.7-1.2 s here, almost all of it Prefect orchestration
(flow and task runs, blocks, the app lock, artifacts), so 200 of them would take minutes. The
first and the last deploy are full `cross_account_deploy` flow runs; the 198 between run in one
flow as the fleet deploys each app: `flows.inspection.inspect_all` of both accounts, then `land_app`
(ledger intents, DeployApplication through the SDK, the change order followed, the app
verified), the same product code with one flow run and no app lock around it. Flow-run
heartbeats are off (their thread holds each run's end up to a second).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from crossdeploy import ledger
from crossdeploy.spec import DeploySpec, with_image_tag
from flows.inspection import inspect_all, make_plan, resolve_accounts
from flows.landing import DeployResult, land_app
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.deploy_support import (
    APP_UID,
    deploy,
    forget_ledgers,
    ledgers,
    normalized,
    save_blocks,
    tear_down,
)
from tests.support.specs import make_spec
from tests.support.worlds import FAST_POLL, demo_world_data, write_world

DEPLOYS = 200
TAGS = ("1.0", "1.1")
VARIABLE_LIMIT = 5000


@pytest.fixture(scope="module")
def instant(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    """The demo world with change orders that take no time, its blocks, and no heartbeats."""
    data = demo_world_data(change_order_seconds=0.0, minute_seconds=0.05)
    path = write_world(data, tmp_path_factory.mktemp("instant-world"))
    with SandboxProcess(world=path) as process:
        save_blocks(process.url)
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield process


@pytest.fixture
def world(instant: SandboxProcess) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(instant.url)
    admin.reset()
    forget_ledgers()
    yield admin
    admin.close()


def _tagged(spec: DeploySpec, n: int) -> DeploySpec:
    return with_image_tag(spec, TAGS[n % 2])


@flow(name="redeploy-many")
def _redeploy(spec: DeploySpec, first: int, count: int) -> list[tuple[str, int | None]]:
    """Deploys `first`..`first + count - 1` (tags in turn) as the fleet lands an app; returns
    each one's outcome and the ledger's size after the first three and every tenth."""
    out: list[tuple[str, int | None]] = []
    accounts = resolve_accounts(spec)
    for n in range(first, first + count):
        tagged = _tagged(spec, n)
        found = inspect_all(tagged, accounts)
        plan = make_plan(tagged, accounts, found)
        result = land_app(tagged, accounts, found, plan, poll=FAST_POLL)  # orders take no time
        measured = n < 3 or n % 10 == 0
        out.append((_changed(result), ledger.read(tagged, APP_UID).size if measured else None))
    return out


def _changed(result: DeployResult) -> str:
    return result.outcome if result.change_order_id else f"{result.outcome} (no change order)"


def test_200_changing_deploys_keep_the_ledger_bounded_and_teardown_restores(
    world: SandboxAdmin, record_property: Any
) -> None:
    spec = make_spec()
    before = normalized(world.state())
    started = time.monotonic()
    first = deploy(_tagged(spec, 0)).result
    created = ledger.read(spec, APP_UID)
    outcomes: list[tuple[str, int | None]] = [(_changed(first), created.size)]
    outcomes += _redeploy(spec, 1, DEPLOYS - 2)
    last = deploy(_tagged(spec, DEPLOYS - 1)).result
    outcomes.append((_changed(last), ledger.read(spec, APP_UID).size))
    deployed = time.monotonic() - started

    assert [o for o, _ in outcomes] == ["deployed"] * DEPLOYS
    assert last.plan.rows and world.state()  # the last run planned against the live world
    sizes = [size for _, size in outcomes if size is not None]
    assert len(sizes) == 23
    assert sizes == [created.size] * len(sizes), "the ledger changed after the first deploy"
    now = ledger.read(spec, APP_UID)
    assert now == created
    assert {(c.resource_type, c.action) for c in now.changes} == {
        ("ram.role", "created"),
        ("ram.policy", "created"),
        ("ram.attachment", "attached"),
        ("cr.acl-entry", "added"),
        ("sae.application", "created"),
    }
    assert max(e.size for e in now.entries) < VARIABLE_LIMIT / 5

    removed = tear_down(spec).result.removed
    assert ("sae.application", "deleted") in {(c.resource_type, c.action) for c in removed}
    assert normalized(world.state()) == before
    assert ledgers() == {}
    record_property(
        "outcome",
        f"{DEPLOYS} changing deploys in {deployed:.1f} s; ledger {created.size} characters in "
        f"{len(created.entries)} entries after each",
    )
    print(f"\nledger after {DEPLOYS} deploys: {created.size} characters; deploys {deployed:.1f} s")
