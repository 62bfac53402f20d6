"""Each step's permission declaration (`Step.permissions`) covers every call its code can make and
names nothing it never calls. `crossdeploy permissions` prints, and the preflight checks, exactly
these declarations, so a call added without its permission, or a permission left behind after
its call went, fails here (the sandbox tests then show the declared resources are the ones RAM
checks: tests/flows/test_least_privilege.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from crossdeploy.permissions import PHASES, Arns, Identity, ram_action
from flows.steps import STEPS
from tasks.step import Step
from tests.support.specs import make_spec

ROOT = Path(__file__).resolve().parents[2]
CALLED = re.compile(r"""["']((?:sae|cr|ram|vpc|sts):[A-Za-z]+)["']""")

HOMES = {
    "network": ["tasks/network.py"],
    "image": ["tasks/image.py"],
    "whitelist": ["tasks/whitelist.py"],
    "role": ["tasks/pull_role.py"],
    "policy": ["tasks/pull_policy.py"],
    "secret": ["tasks/registry_secret.py"],
    # The app step creates or deploys, follows its change order, verifies and diagnoses.
    "app": [
        "tasks/application.py",
        "tasks/change_order.py",
        "tasks/verify.py",
        "flows/diagnosis.py",
    ],
}
"""The modules whose calls each step makes."""

NOT_A_STEP = {
    "flows/inspection.py": {"sts:GetCallerIdentity"},  # STS: "No authorization is required"
    # the demo's closing status line, read with the demo world's root keys
    "cli/demo.py": {"sae:ListApplications", "sae:DescribeApplicationStatus"},
    "flows/permissions.py": {  # reading the identity's own policies: Identity.own_policy_reads
        "ram:ListPoliciesForUser",
        "ram:ListGroupsForUser",
        "ram:ListPoliciesForGroup",
        "ram:ListPoliciesForRole",
        "ram:GetPolicy",
    },
}

VARIANTS = [
    make_spec(),
    make_spec(image={"instance_id": None}),
    make_spec(image={"url": "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"}),
    make_spec(network={"whitelist": "none"}),
    make_spec(access={"method": "secret", "registry_login": "login"}),
    make_spec(rollout={"batches": 2, "confirm": "manual", "rollback_on_failure": False}),
    make_spec(rollout={"batches": 2, "rollback_on_failure": True}),
]
"""Specs that between them take every branch a declaration has."""

ARNS = Arns("2" * 16, "cn-hangzhou")


def called(paths: list[str]) -> set[str]:
    return {ram_action(name) for path in paths for name in CALLED.findall(_source(path))}


def _source(path: str) -> str:
    return (ROOT / path).read_text()


def declared(step: Step[Any, Any]) -> set[str]:
    return {
        permission.action
        for spec in VARIANTS
        for phase in PHASES
        for permission in step.permissions(spec, ARNS).of(phase)
    }


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_call_a_step_makes_is_declared_and_nothing_else(step: Step[Any, Any]) -> None:
    calls = called(HOMES[step.name])

    assert sorted(calls - declared(step)) == [], "called but not declared"
    assert sorted(declared(step) - calls) == [], "declared but never called"


def test_every_module_that_calls_the_cloud_belongs_to_a_step() -> None:
    homes = {path for paths in HOMES.values() for path in paths}
    calling = {
        str(path.relative_to(ROOT))
        for package in ("tasks", "flows", "crossdeploy", "blocks", "cli")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"\bcall\(|write_once\(", path.read_text()) and CALLED.search(path.read_text())
    }

    assert sorted(calling - homes - NOT_A_STEP.keys()) == []
    for path, allowed in NOT_A_STEP.items():
        assert called([path]) == allowed, path


def test_an_identity_reads_its_own_policies_with_what_the_preflight_calls() -> None:
    user = Identity.of("acs:ram::2222222222222222:user/deployer")
    role = Identity.of("acs:ram::2222222222222222:assumed-role/deployer/session-1")
    root = Identity.of("acs:ram::2222222222222222:root")

    assert {p.action for p in user.own_policy_reads()} | {
        p.action for p in role.own_policy_reads()
    } == NOT_A_STEP["flows/permissions.py"]
    assert root.own_policy_reads() == ()
    assert (role.kind, role.name) == ("role", "deployer")
