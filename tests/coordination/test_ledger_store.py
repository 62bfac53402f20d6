"""The deploy ledger's store (crossdeploy/ledger.py) against the session's Prefect server: a
ledger of the old name and shape is moved by the next deploy or teardown; the same namespace and
app in two A accounts are two ledgers; two processes writing one ledger at once lose nothing; an
entry that could not fit fails before it is written (a deploy with no cloud write); only what
teardown reverses is kept.
(200 deploys of one app: test_ledger.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from prefect.settings import PREFECT_API_URL

from crossdeploy import ledger, ram_policy
from crossdeploy.ledger import Intent, LedgerEntryTooLargeError
from crossdeploy.plan import Change
from crossdeploy.spec import DeploySpec, with_image_tag
from flows.steps import STEPS
from sandbox.testing import SandboxAdmin
from tests.support.clients import SdkFactory
from tests.support.deploy_support import (
    APP_UID,
    deploy,
    forget_ledgers,
    ledgers,
    normalized,
    tear_down,
)
from tests.support.specs import make_spec

OTHER_UID = "3333333333333333"
OLD_NAME = "crossdeploy-cn-hangzhou-demo-shop-web"


# -- migration --------------------------------------------------------------------------------


def _as_old_ledger(spec: DeploySpec, history: int) -> list[dict[str, Any]]:
    """Turn the app's ledger into what an earlier version kept: one Variable without account
    A's uid, every change appended (`history` deploys of change orders in between)."""
    entries = [e.value for e in ledger.read(spec, APP_UID).entries]
    for n in range(history):
        entries.append(asdict(Change("A", "sae.application", "app-id", "deployed", f"Image {n}")))
        entries.append(asdict(Change("A", "sae.change-order", f"co-{n}", "started", "deploy")))
    forget_ledgers()
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=ledger.old_ledger_name(spec), value=entries))
    return entries


def test_an_old_ledger_is_moved_by_the_next_deploy_and_by_teardown(world: SandboxAdmin) -> None:
    spec = make_spec()
    before = normalized(world.state())
    assert deploy(with_image_tag(spec, "1.1")).result.outcome == "deployed"
    kept = [e.value for e in ledger.read(spec, APP_UID).entries]
    old = _as_old_ledger(spec, history=15)
    assert len(json.dumps(old, separators=(",", ":"))) > 3500  # an old ledger near its end
    assert list(ledgers()) == [OLD_NAME]

    assert deploy(with_image_tag(spec, "1.0")).result.outcome == "deployed"
    assert ledgers() == {ledger.ledger_id(spec, APP_UID): kept}

    # A run that died between moving the entries and deleting the old ledger: done again.
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=OLD_NAME, value=old))
    ledger.migrate(spec, APP_UID, retention=STEPS)
    assert ledgers() == {ledger.ledger_id(spec, APP_UID): kept}

    _as_old_ledger(spec, history=3)
    removed = tear_down(spec).result.removed
    assert {(c.resource_type, c.action) for c in removed} >= {
        ("sae.application", "deleted"),
        ("ram.role", "deleted"),
        ("ram.policy", "deleted"),
    }
    assert normalized(world.state()) == before
    assert ledgers() == {}


# -- the store ----------------------------------------------------------------------------------


def _acl_entry(n: int, comment: str = "crossdeploy") -> Change:
    return Change(
        "B", "cr.acl-entry", f"cri-demo:internet:10.0.{n // 250}.{n % 250}/32", "added", comment
    )


def test_the_same_app_in_two_accounts_has_two_ledgers(prefect_harness: None) -> None:
    """Account A's uid is part of the ledger's key: the same namespace and app name in another
    account (a world with one account A, so shown with the ledger API) is another ledger."""
    forget_ledgers()
    spec = make_spec()
    mine = Change("A", "sae.application", "app-1", "created", "shop-web in cn-hangzhou:demo")
    theirs = Change("A", "sae.application", "app-2", "created", "shop-web in cn-hangzhou:demo")
    ledger.record(spec, APP_UID, [mine], retention=STEPS)
    ledger.record(spec, OTHER_UID, [theirs], retention=STEPS)
    assert ledger.read(spec, APP_UID).changes == [mine]
    assert ledger.read(spec, OTHER_UID).changes == [theirs]
    ledger.forget(ledger.read(spec, APP_UID))
    assert ledger.read(spec, APP_UID).changes == []
    assert ledger.read(spec, OTHER_UID).changes == [theirs]
    forget_ledgers()


WRITER = """
import sys, time
from crossdeploy import ledger, ram_policy
from crossdeploy.plan import Change
from flows.steps import STEPS
from tests.support.specs import make_spec

who, count, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[4])
spec = make_spec()
time.sleep(max(0.0, start - time.time()))  # both start writing at the same moment
for n in range(count):
    change = Change("B", "cr.acl-entry", f"cri-demo:internet:10.{who}.0.{n}/32", "added", "w")
    intent = ledger.Intent(change)
    ledger.intend(spec, sys.argv[3], [intent])
    ledger.record(spec, sys.argv[3], [change], settles=[intent], retention=STEPS)
"""


def test_two_processes_writing_one_ledger_lose_nothing(prefect_harness: None) -> None:
    """Two writer processes, each announcing and recording its own changes into one ledger at
    the same moment: every change is there and no intent is left."""
    forget_ledgers()
    count = 20
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    start = str(time.time() + 4)  # past both processes' imports
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(who), str(count), APP_UID, start],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in (1, 2)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err[-2000:]
    written = ledger.read(make_spec(), APP_UID)
    assert len(written.changes) == 2 * count
    assert written.pending == []
    forget_ledgers()


def test_an_entry_that_would_not_fit_fails_before_it_is_written(prefect_harness: None) -> None:
    forget_ledgers()
    spec = make_spec()
    huge = Intent(Change("B", "ram.role", "sae-pull-shop-web", "trust-replaced", "x" * 4700))
    with pytest.raises(LedgerEntryTooLargeError, match="more than a Prefect Variable holds"):
        ledger.intend(spec, APP_UID, [huge])
    assert ledgers() == {}


def _long_trust(statements: int) -> str:
    """A valid trust policy of `statements` services: near RAM's 4,096 characters."""
    services = [f"svc{n:03d}.aliyuncs.com" for n in range(statements)]
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [s]}}
            for s in services
        ],
    }
    return ram_policy.to_text(trust)


def test_a_trust_too_long_to_keep_fails_the_deploy_before_any_write(
    world: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    """Replacing a trust policy (access.exclusive_trust) keeps the old one to restore; one that
    could not fit a ledger entry fails the deploy with the reason before any cloud write."""
    trust = _long_trust(43)
    assert len(trust) <= 4096
    role = make_spec().role_name
    fast_sdk.ram().create_role(
        ram_models.CreateRoleRequest(role_name=role, assume_role_policy_document=trust)
    )
    writes = len(world.writes())
    run = deploy(make_spec(access={"exclusive_trust": True}))
    assert run.state.is_failed()
    error = run.state.result(raise_on_failure=False)
    assert isinstance(error, LedgerEntryTooLargeError), repr(error)
    assert f"ram.role {role} (trust-replaced)" in str(error)
    assert world.writes()[writes:] == []
    assert ledgers() == {}


def test_what_teardown_would_not_use_is_not_kept(prefect_harness: None) -> None:
    """Changes teardown never reverses are not written; a change is kept once (the first trust
    replacement holds the trust to restore); of a policy's new versions only those RAM can
    still hold, none once the policy itself is ours."""
    forget_ledgers()
    spec = make_spec()
    role = "sae-pull-shop-web"
    ledger.record(
        spec,
        APP_UID,
        [
            Change("A", "sae.application", "app-1", "deployed", "Image"),
            Change("A", "sae.change-order", "co-1", "started", "deploy"),
            Change("A", "sae.secret", "cn-hangzhou:demo/7", "updated", "login"),
            Change("B", "ram.role", role, "trust-replaced", "the original"),
        ],
        retention=STEPS,
    )
    later = Change("B", "ram.role", role, "trust-replaced", "a later edit")
    ledger.record(spec, APP_UID, [later], retention=STEPS)
    assert ledger.read(spec, APP_UID).changes == [
        Change("B", "ram.role", role, "trust-replaced", "the original")
    ]
    for version in range(2, 10):
        change = Change("B", "ram.policy-version", f"p/v{version}", "created", f"v{version - 1}")
        ledger.record(spec, APP_UID, [change], retention=STEPS)
    versions = [c.resource_id for c in ledger.read(spec, APP_UID).changes][1:]
    assert versions == [f"p/v{v}" for v in range(5, 10)]
    created = Change("B", "ram.policy", "p", "created", "v1")
    ledger.record(spec, APP_UID, [created], retention=STEPS)
    assert [c.resource_type for c in ledger.read(spec, APP_UID).changes] == [
        "ram.role",
        "ram.policy",
    ]
    forget_ledgers()
