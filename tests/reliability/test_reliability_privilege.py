"""Issue 6, least privilege: the pull policy grants exactly the five documented actions, each on
the resource ACR authenticates it on (issue 13: the token on `*`, the others on the image's
instance and repository), and the pull role's trust never lets in anyone new but the SAE
service principal of account A.

The judge is the sandbox's own RAM grammar and evaluator (`sandbox.policy`), which the sandbox
uses to decide real AssumeRole and permission checks. The trust property runs over random
existing trust policies (hypothesis); the same checks then run on what the deploy steps really
wrote to a sandbox account.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossdeploy import ram_policy
from crossdeploy.spec import DeploySpec
from sandbox.policy import Decision, PolicyDocument, Principal, evaluate, trust_allows
from tasks.pull_policy import apply_pull_policy, inspect_pull_policy
from tasks.pull_role import ExistingRole, apply_pull_role, decide, inspect_pull_role
from tests.support.clients import UIDS, SdkFactory
from tests.support.deploy_support import personal_image
from tests.support.specs import make_spec

A, B, OTHER = UIDS["app"], UIDS["registry"], "3333333333333333"
SAE_A = Principal(A, "service", "sae.aliyuncs.com")
Record = Callable[[str, Any], None]

# -- the pull policy -------------------------------------------------------------------------------

OTHER_CR_ACTIONS = (
    "cr:PushRepository",
    "cr:CreateRepository",
    "cr:DeleteRepository",
    "cr:UpdateRepository",
    "cr:DeleteRepoTag",
    "cr:CreateInstanceEndpointAclPolicy",
    "cr:DeleteInstanceEndpointAclPolicy",
    "cr:UpdateInstanceEndpointStatus",
    "cr:CreateNamespace",
    "cr:DeleteInstance",
    "cr:ListInstance",
    "ram:CreateRole",
    "sts:AssumeRole",
)


def policy_checks(text: str, intended: dict[str, str]) -> str:
    """Assert a pull policy allows exactly PULL_ACTIONS, each on exactly its `intended` resource
    (the one ACR authenticates it on); returns a summary.

    Judged by the sandbox's evaluator: every pull action is allowed on its resource and on no
    other intended one; no other action is allowed on any of them; the pull actions on another
    repository, instance or account are not (the token aside: ACR checks it on `*` only, and the
    login it gives has the role's permissions, no more). The document names no wildcard action,
    no other resource, and the token alone in its statement.
    """
    document = PolicyDocument.parse(text, "permission")
    allows = [s for s in document.statements if s.effect == "Allow"]
    granted = {(a, r) for s in allows for a in s.actions for r in s.resources}
    assert granted == set(intended.items())
    assert not any("*" in a or "?" in a for a, _ in granted)
    token = [s for s in allows if ram_policy.LOGIN_ACTION in s.actions]
    assert [(s.actions, s.resources) for s in token] == [
        ((ram_policy.LOGIN_ACTION,), (ram_policy.LOGIN_RESOURCE,))
    ]
    resources = set(intended.values())
    for action, resource in intended.items():
        assert evaluate([document], action, resource) is Decision.ALLOW, (action, resource)
        if action == ram_policy.LOGIN_ACTION:
            continue
        for other in resources - {resource, ram_policy.LOGIN_RESOURCE}:
            assert evaluate([document], action, other) is not Decision.ALLOW, (action, other)
    for resource in resources:
        for action in OTHER_CR_ACTIONS:
            assert evaluate([document], action, resource) is not Decision.ALLOW, action
    elsewhere = [
        f"acs:cr:*:{B}:repository/cri-demo/shop/worker",
        f"acs:cr:*:{B}:repository/cri-other/shop/web",
        f"acs:cr:*:{B}:instance/cri-other",
        f"acs:cr:*:{OTHER}:repository/cri-demo/shop/web",
        f"acs:cr:*:{OTHER}:instance/cri-demo",
    ]
    for resource in elsewhere:
        if any(r.endswith("/*") and resource.startswith(r[:-1]) for r in resources):
            continue  # Personal Edition: ListInstanceEndpoint on any instance of B, by design
        for action in ram_policy.PULL_ACTIONS:
            if action != ram_policy.LOGIN_ACTION:
                assert evaluate([document], action, resource) is not Decision.ALLOW, resource
    by_resource: dict[str, list[str]] = {}
    for action, resource in intended.items():
        by_resource.setdefault(resource, []).append(action.removeprefix("cr:"))
    where = "; ".join(f"{', '.join(a)} on {r}" for r, a in by_resource.items())
    return f"{len(granted)} actions, no wildcard action: {where}"


@pytest.mark.reliability("least privilege", "the pull policy the tool builds, per edition")
@pytest.mark.parametrize("edition", ["enterprise", "personal"])
def test_pull_policy_grants_exactly_the_five_actions(edition: str, record_property: Record) -> None:
    instance = "cri-demo" if edition == "enterprise" else None
    document = ram_policy.pull_policy(B, instance_id=instance, namespace="shop", repo="web")
    intended = ram_policy.pull_resources(B, instance_id=instance, namespace="shop", repo="web")
    repository = "cri-demo/shop/web" if instance else "shop/web"
    assert intended == {
        "cr:GetAuthorizationToken": "*",
        "cr:ListInstanceEndpoint": f"acs:cr:*:{B}:instance/{instance or '*'}",
        "cr:PullRepository": f"acs:cr:*:{B}:repository/{repository}",
        "cr:GetRepository": f"acs:cr:*:{B}:repository/{repository}",
        "cr:ListRepositoryTag": f"acs:cr:*:{B}:repository/{repository}",
    }
    record_property("outcome", policy_checks(ram_policy.to_text(document), intended))


# -- the trust merge, over random existing trust policies ------------------------------------------

RAM_PRINCIPALS = (
    f"acs:ram::{A}:root",
    f"acs:ram::{OTHER}:root",
    OTHER,
    f"acs:ram::{B}:role/ops",
    "*",
)
SERVICE_PRINCIPALS = (
    f"{A}@sae.aliyuncs.com",
    f"{OTHER}@sae.aliyuncs.com",
    "sae.aliyuncs.com",
    "ecs.aliyuncs.com",
    f"{B}@fc.aliyuncs.com",
)
FEDERATED_PRINCIPALS = (f"acs:ram::{B}:saml-provider/idp",)
CALLERS = (
    SAE_A,
    Principal(OTHER, "service", "sae.aliyuncs.com"),
    Principal(B, "service", "sae.aliyuncs.com"),
    Principal(B, "service", "ecs.aliyuncs.com"),
    Principal(A, "service", "ecs.aliyuncs.com"),
    Principal(A, "account"),
    Principal(B, "account"),
    Principal(OTHER, "account"),
    Principal(B, "role", "ops"),
    Principal(OTHER, "role", "deployer"),
)
"""Everyone who might try to assume the role: A's SAE, others' SAE, other services, accounts,
roles."""
CONTEXTS: tuple[dict[str, str], ...] = ({}, {"sts:ExternalId": "abc"}, {"acs:SourceIp": "10.1.2.3"})


def _one_or_many(values: tuple[str, ...]) -> st.SearchStrategy[str | list[str]]:
    choice = st.sampled_from(values)
    return st.one_of(choice, st.lists(choice, min_size=1, max_size=3, unique=True))


principal_blocks = st.dictionaries(
    st.sampled_from(("RAM", "Service", "Federated")), st.just(None), min_size=1
).flatmap(
    lambda kinds: st.fixed_dictionaries(
        {
            kind: _one_or_many(
                RAM_PRINCIPALS
                if kind == "RAM"
                else SERVICE_PRINCIPALS
                if kind == "Service"
                else FEDERATED_PRINCIPALS
            )
            for kind in kinds
        }
    )
)
conditions = st.sampled_from(
    (
        None,
        {"StringEquals": {"sts:ExternalId": "abc"}},
        {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
        {"StringNotEquals": {"sts:ExternalId": "abc"}},
    )
)


@st.composite
def trust_statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(("Allow", "Deny"))),
        "Action": draw(st.sampled_from(("sts:AssumeRole", ["sts:AssumeRole"], "sts:*", "*"))),
        "Principal": draw(principal_blocks),
    }
    condition = draw(conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


trust_documents = st.builds(
    lambda items, single: {"Version": "1", "Statement": items[0] if single else items},
    st.lists(trust_statements(), min_size=1, max_size=5),
    st.booleans(),
)


@functools.lru_cache(maxsize=256)
def _decisions(text: str) -> dict[tuple[Principal, int], Decision]:
    document = PolicyDocument.parse(text, "trust")
    return {
        (who, n): trust_allows(document, who, B, ctx)
        for who in CALLERS
        for n, ctx in enumerate(CONTEXTS)
    }


def assert_no_new_principal(before: str, after: str) -> None:
    """Whoever may assume the role after, could before, or is A's SAE; whoever was refused by a
    Deny before still is (no Deny was dropped)."""
    old, new = _decisions(before), _decisions(after)
    for (who, n), decision in new.items():
        if decision is Decision.ALLOW and who != SAE_A:
            assert old[(who, n)] is Decision.ALLOW, (who, CONTEXTS[n])
        if old[(who, n)] is Decision.DENY:
            assert decision is Decision.DENY, (who, CONTEXTS[n])
    kept_denies = [s for s in ram_policy.statements(json.loads(before)) if s["Effect"] == "Deny"]
    merged = ram_policy.statements(json.loads(after))
    for deny in kept_denies:
        assert any(ram_policy.same_statement(deny, s) for s in merged), deny


def _wanted(trust: str, *, exclusive: bool) -> tuple[str, str | None]:
    """What the pull-role step decides for a role with this trust: (action, trust to write)."""
    role = ExistingRole(f"acs:ram::{B}:role/sae-pull-shop-web", "", trust)
    state = decide(
        role,
        role_name="sae-pull-shop-web",
        app_uid=A,
        registry_uid=B,
        exclusive=exclusive,
        description="",
    )
    return state.action, state.trust_wanted


@pytest.mark.reliability(
    "least privilege",
    "trust merge over random existing trust policies (hypothesis): no principal beyond the "
    "original ones plus A's SAE, no Deny dropped",
)
def test_trust_merge_never_admits_a_new_principal(record_property: Record) -> None:
    decided: Counter[str] = Counter()

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=trust_documents)
    def merge(document: dict[str, Any]) -> None:
        text = json.dumps(document)
        PolicyDocument.parse(text, "trust")
        merged = ram_policy.to_text(ram_policy.merge_sae_trust(document, A))
        assert_no_new_principal(text, merged)
        new_allowed = ram_policy.allowed_principals(json.loads(merged))
        assert new_allowed <= ram_policy.allowed_principals(document) | {
            ("Service", f"{A}@sae.aliyuncs.com")
        }
        action, wanted = _wanted(text, exclusive=False)
        decided[action] += 1
        if wanted is not None:
            assert action == "merge"
            assert_no_new_principal(text, wanted)
            assert trust_allows(PolicyDocument.parse(wanted, "trust"), SAE_A, B).allowed
        elif action == "blocked":
            refused = [_decisions(text)[(SAE_A, n)] for n in range(len(CONTEXTS))]
            assert Decision.DENY in refused
        else:
            assert action == "none" and _decisions(text)[(SAE_A, 0)] is Decision.ALLOW

    merge()
    record_property("outcome", f"{_tally(decided)}; every one judged for {_JUDGED}: 0 violations")


@pytest.mark.reliability(
    "least privilege",
    "exclusive_trust over random existing trust policies (hypothesis): exactly A's SAE",
)
def test_exclusive_trust_admits_exactly_as_sae(record_property: Record) -> None:
    decided: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None)
    @given(document=trust_documents)
    def replace(document: dict[str, Any]) -> None:
        action, wanted = _wanted(json.dumps(document), exclusive=True)
        decided[action] += 1
        text = wanted or json.dumps(document)
        assert action in ("replace", "none")
        for (who, _), decision in _decisions(text).items():
            assert decision.allowed == (who == SAE_A), who
        assert ram_policy.allowed_principals(json.loads(text)) == {
            ("Service", f"{A}@sae.aliyuncs.com")
        }

    replace()
    record_property("outcome", f"{_tally(decided)}; only A's SAE may assume the role after each")


def _tally(decided: Counter[str]) -> str:
    parts = ", ".join(f"{n} {action}" for action, n in sorted(decided.items()))
    return f"{sum(decided.values())} random trust policies ({parts})"


_JUDGED = f"{len(CALLERS)} callers x {len(CONTEXTS)} request contexts"


# -- what the deploy steps really write ------------------------------------------------------------

EXISTING_TRUST = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"RAM": [f"acs:ram::{B}:root"]},
        },
        {
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "ecs.aliyuncs.com"},
        },
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"RAM": OTHER},
            "Condition": {"StringEquals": {"sts:ExternalId": "abc"}},
        },
    ],
}


def _apply_steps(creds_b: Any, spec: DeploySpec) -> None:
    role = inspect_pull_role(creds_b, spec, app_uid=A, registry_uid=B)
    apply_pull_role(creds_b, role)
    instance = spec.image.instance_id
    policy = inspect_pull_policy(creds_b, spec, app_uid=A, registry_uid=B, instance_id=instance)
    apply_pull_policy(creds_b, policy)


@pytest.mark.reliability(
    "least privilege",
    "what the role and policy steps write to account B (existing role with other trust; then "
    "exclusive_trust; Personal Edition)",
)
def test_written_role_and_policy_grant_no_more(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, record_property: Record
) -> None:
    ram = fast_sdk.ram("registry")
    before = json.dumps(EXISTING_TRUST)
    ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="sae-pull-shop-web", assume_role_policy_document=before
        )
    )

    def trust_now() -> str:
        role = ram.get_role(ram_models.GetRoleRequest(role_name="sae-pull-shop-web")).body.role
        return str(role.assume_role_policy_document)

    def policy_now(name: str) -> str:
        request = ram_models.GetPolicyRequest(policy_name=name, policy_type="Custom")
        return str(ram.get_policy(request).body.default_policy_version.policy_document)

    spec = make_spec()
    _apply_steps(fast_creds["registry"], spec)
    merged = trust_now()
    assert_no_new_principal(before, merged)
    assert trust_allows(PolicyDocument.parse(merged, "trust"), SAE_A, B).allowed
    intended = ram_policy.pull_resources(B, instance_id="cri-demo", namespace="shop", repo="web")
    enterprise = policy_checks(policy_now(spec.policy_name), intended)

    _apply_steps(fast_creds["registry"], make_spec(access={"exclusive_trust": True}))
    exclusive = _decisions(trust_now())
    assert {who for (who, _), d in exclusive.items() if d.allowed} == {SAE_A}

    personal = make_spec(app={"name": "shop-personal"}, image=personal_image())
    _apply_steps(fast_creds["registry"], personal)
    personal_resources = ram_policy.pull_resources(
        B, instance_id=None, namespace="shop-personal", repo="web"
    )
    policy_checks(policy_now(personal.policy_name), personal_resources)
    record_property(
        "outcome",
        f"merged trust: 3 statements kept, +A's SAE only; exclusive: A's SAE only; "
        f"policy: {enterprise}",
    )
