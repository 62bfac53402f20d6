"""Write-ahead intents on resources that existed before the deploy (`Step.intents`, `confirm`).

A trust merge into someone's role and a new default version of someone's policy, plus the
attachment, written and never recorded (the process died first): `confirm` finds exactly what
was added, and the steps' own remove functions take out only that, so both accounts are as they
were. The same intents confirmed before any write happened remove nothing. (The crash tests in
test_reliability_crashes.py cover created resources through the real flow.)
"""

from __future__ import annotations

from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from crossdeploy import ram_policy
from flows.steps import STEPS
from sandbox.testing import SandboxAdmin, SandboxProcess
from tasks import pull_policy, pull_role
from tasks.pull_policy import apply_pull_policy, inspect_pull_policy, remove_pull_policy
from tasks.pull_role import apply_pull_role, inspect_pull_role, remove_pull_role
from tasks.step import Accounts
from tests.support.clients import UIDS, SdkFactory, sandbox_credentials
from tests.support.deploy_support import normalized
from tests.support.specs import make_spec

OTHER_TRUST = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": ["ecs.aliyuncs.com"]},
        }
    ],
}
OTHER_POLICY = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": ["cr:ListRepository"], "Resource": ["*"]}],
}


def _someone_elses(sdk: SdkFactory, name: str) -> None:
    ram = sdk.ram()
    ram.create_role(
        ram_models.CreateRoleRequest(
            role_name=name,
            assume_role_policy_document=ram_policy.to_text(OTHER_TRUST),
            description="made by hand",
        )
    )
    ram.create_policy(
        ram_models.CreatePolicyRequest(
            policy_name=name,
            policy_document=ram_policy.to_text(OTHER_POLICY),
            description="made by hand",
        )
    )


def _as_before(admin: SandboxAdmin) -> dict[str, Any]:
    """Both accounts, normalized, without RAM's version counter (version ids are never reused,
    so a deleted version still counts, as it does for a recorded new version)."""
    state = normalized(admin.state())
    for policy in state["registry"]["global"]["ram_policy"].values():
        policy.pop("NextVersion", None)
    return state


def _states(registry: Any) -> tuple[Any, Any]:
    spec = make_spec()
    uids = {"app_uid": UIDS["app"], "registry_uid": UIDS["registry"]}
    role = inspect_pull_role(registry, spec, **uids)
    policy = inspect_pull_policy(registry, spec, instance_id="cri-demo", **uids)
    return role, policy


def test_unrecorded_merge_and_new_version_are_taken_back_exactly(
    fast_sandbox_process: SandboxProcess, fast_admin: SandboxAdmin, fast_sdk: SdkFactory
) -> None:
    _someone_elses(fast_sdk, make_spec().role_name)
    registry = sandbox_credentials(fast_sandbox_process.url, "registry")
    app = sandbox_credentials(fast_sandbox_process.url, "app")
    accounts = Accounts(app, registry, UIDS["app"], UIDS["registry"])
    before = _as_before(fast_admin)
    role, policy = _states(registry)
    assert (role.action, policy.exists, policy.up_to_date, policy.attached) == (
        "merge",
        True,
        False,
        False,
    )
    intents = pull_role.STEP.intents(role) + pull_policy.STEP.intents(policy)
    kinds = [(i.change.resource_type, i.change.action) for i in intents]
    assert kinds == [
        ("ram.role", "trust-merged"),
        ("ram.policy-version", "created"),
        ("ram.attachment", "attached"),
    ]

    # Confirmed before any write: nothing there is ours, so nothing is removed.
    unwritten = STEPS.confirm(accounts, intents)
    assert remove_pull_policy(registry, unwritten) + remove_pull_role(registry, unwritten) == []
    assert _as_before(fast_admin) == before

    # Written, never recorded: confirm names the version RAM assigned; teardown takes back
    # exactly the statement, the version and the attachment.
    written = apply_pull_role(registry, role) + apply_pull_policy(registry, policy)
    confirmed = STEPS.confirm(accounts, intents)
    assert sorted((c.resource_type, c.resource_id) for c in confirmed) == sorted(
        (c.resource_type, c.resource_id) for c in written
    )
    undone = remove_pull_policy(registry, confirmed) + remove_pull_role(registry, confirmed)
    assert {(c.resource_type, c.action) for c in undone} == {
        ("ram.attachment", "detached"),
        ("ram.policy-version", "deleted"),
        ("ram.role", "trust-unmerged"),
    }
    assert _as_before(fast_admin) == before
