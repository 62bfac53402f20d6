"""The policy evaluator without a server: grammar, permission decisions and trust decisions.

The same evaluator gates every assumed-role call and later decides image pulls, so Deny
precedence, wildcards and the principal forms are pinned here exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sandbox.policy import (
    Decision,
    PolicyDocument,
    PolicyError,
    PolicyKind,
    Principal,
    evaluate,
    trust_allows,
)
from tests.support.policies import document, merged, permission, statement, trust

ROLE_ACCOUNT = "2222222222222222"
CALLER_ACCOUNT = "1111111111111111"
THIRD_ACCOUNT = "3333333333333333"
REPO = f"acs:cr:cn-hangzhou:{ROLE_ACCOUNT}:repository/cri-demo/shop/web"

ALLOW, DENY, IMPLICIT = Decision.ALLOW, Decision.DENY, Decision.IMPLICIT_DENY


def parsed(text: str, kind: PolicyKind = "permission") -> PolicyDocument:
    return PolicyDocument.parse(text, kind)


# -- grammar ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("permission", permission("cr:PullRepository")),
        ("permission", json.dumps({"Version": "1", "Statement": statement("cr:*")})),
        ("permission", document(statement(["cr:Get*", "cr:List*"], ["acs:cr:*:*:*", "*"]))),
        ("permission", document(statement("*", effect="Deny"))),
        (
            "permission",
            document(
                statement(
                    "cr:*",
                    Condition={
                        "StringEquals": {"acs:SourceVpc": ["vpc-1", "vpc-2"]},
                        "StringNotEquals": {"k": "v"},
                        "StringEqualsIgnoreCase": {"k": "v"},
                        "StringNotEqualsIgnoreCase": {"k": "v"},
                        "StringLike": {"k": "v*"},
                        "StringNotLike": {"k": "v?"},
                        "Bool": {"acs:SecureTransport": True},
                        "IpAddress": {"acs:SourceIp": "10.0.0.0/8"},
                        "NotIpAddress": {"acs:SourceIp": ["192.168.0.1"]},
                    },
                )
            ),
        ),
        ("trust", trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:root"])),
        ("trust", trust(service=["sae.aliyuncs.com"], effect="Deny")),
        (
            "trust",
            json.dumps(
                {
                    "Version": "1",
                    "Statement": {
                        "Effect": "Allow",
                        "Action": ["sts:*"],
                        "Principal": {"Federated": "acs:ram::1:saml-provider/idp"},
                    },
                }
            ),
        ),
        ("trust", trust(ram=["*"], Condition={"StringEquals": {"sts:ExternalId": "abc"}})),
    ],
    ids=[
        "one-action",
        "statement-as-object",
        "lists",
        "deny-all",
        "every-condition-operator",
        "trust-ram",
        "trust-service-deny",
        "trust-federated-object",
        "trust-external-id",
    ],
)
def test_valid_documents_parse(kind: PolicyKind, text: str) -> None:
    """Documents RAM accepts must not be refused, or the workflow could not create them."""
    doc = parsed(text, kind)
    assert doc.statements
    assert all(s.effect in ("Allow", "Deny") for s in doc.statements)


def test_parse_keeps_what_evaluation_needs() -> None:
    """Strings become tuples, condition keys are case-folded, booleans become 'true'/'false'."""
    doc = parsed(
        document(statement("cr:Pull*", "acs:cr:*:*:*", Condition={"Bool": {"Acs:Secure": False}}))
    )
    (only,) = doc.statements
    assert only.actions == ("cr:Pull*",)
    assert only.resources == ("acs:cr:*:*:*",)
    assert only.conditions == {"Bool": {"acs:secure": ("false",)}}
    trust_doc = parsed(trust(ram=["123"], service=["sae.aliyuncs.com"]), "trust")
    assert trust_doc.statements[0].principals == {
        "RAM": ("123",),
        "Service": ("sae.aliyuncs.com",),
    }


_NO_PRINCIPAL = {"Effect": "Allow", "Action": "sts:AssumeRole"}


@pytest.mark.parametrize(
    ("kind", "text", "says"),
    [
        ("permission", "{not json", "not valid JSON"),
        ("permission", "[]", "must be a JSON object"),
        ("permission", document(statement("cr:*"), version="2"), '"Version" must be "1"'),
        ("permission", json.dumps({"Statement": [statement("cr:*")]}), '"Version" must be "1"'),
        ("permission", json.dumps({"Version": "1", "Id": "x", "Statement": []}), "Id"),
        ("permission", document(), "non-empty list"),
        ("permission", json.dumps({"Version": "1", "Statement": "x"}), "non-empty list"),
        ("permission", json.dumps({"Version": "1", "Statement": ["x"]}), "JSON object"),
        ("permission", document(statement("cr:*", effect="allow")), '"Effect"'),
        ("permission", document(statement("cr:*", effect="Permit")), '"Effect"'),
        ("permission", document({"Effect": "Allow", "Resource": "*"}), '"Action"'),
        ("permission", document(statement([])), '"Action"'),
        ("permission", document(statement("PullRepository")), "<service>:<action>"),
        ("permission", document({"Effect": "Allow", "Action": "cr:*"}), '"Resource"'),
        ("permission", document(statement("cr:*", "")), '"Resource"'),
        ("permission", document(statement("cr:*", Principal={"RAM": ["*"]})), "Principal"),
        ("permission", document(statement("cr:*", NotAction="x")), "NotAction"),
        ("permission", document(statement("cr:*", Condition=[])), '"Condition"'),
        (
            "permission",
            document(statement("cr:*", Condition={"NumericEquals": {"k": "1"}})),
            "NumericEquals",
        ),
        ("permission", document(statement("cr:*", Condition={"StringEquals": {}})), "map keys"),
        (
            "permission",
            document(statement("cr:*", Condition={"StringEquals": {"k": 1}})),
            "StringEquals.k",
        ),
        ("permission", permission("cr:*", resource="x" * 6200), "longer than 6144"),
        ("trust", document(_NO_PRINCIPAL), "Principal"),
        ("trust", document({**_NO_PRINCIPAL, "Principal": {}}), "Principal"),
        ("trust", document({**_NO_PRINCIPAL, "Principal": "*"}), "Principal"),
        ("trust", document({**_NO_PRINCIPAL, "Principal": {"AWS": ["*"]}}), '"AWS"'),
        ("trust", document({**_NO_PRINCIPAL, "Principal": {"RAM": []}}), "Principal.RAM"),
        ("trust", trust(ram=["*"], Resource="*"), "Resource"),
        ("trust", trust(ram=["*"], Action="ecs:RunInstances"), "sts:AssumeRole"),
        ("trust", trust(ram=["*"], effect="Permit"), '"Effect"'),
        ("trust", trust(ram=[str(10**15 + i) for i in range(250)]), "longer than 4096"),
    ],
)
def test_invalid_documents_are_refused(kind: PolicyKind, text: str, says: str) -> None:
    """Each grammar rule refuses on its own, with a message naming what is wrong."""
    with pytest.raises(PolicyError) as refused:
        parsed(text, kind)
    assert says in str(refused.value)


def test_trust_and_permission_grammars_differ() -> None:
    """A valid permission policy is not a valid trust policy and vice versa."""
    with pytest.raises(PolicyError):
        parsed(permission("sts:AssumeRole"), "trust")
    with pytest.raises(PolicyError):
        parsed(trust(ram=["*"]), "permission")


# -- permission evaluation -------------------------------------------------------------------------


def test_allow_deny_and_implicit_deny() -> None:
    pull = parsed(permission("cr:PullRepository"))
    assert evaluate([pull], "cr:PullRepository", REPO) is ALLOW
    assert evaluate([pull], "cr:PushRepository", REPO) is IMPLICIT
    assert evaluate([], "cr:PullRepository", REPO) is IMPLICIT
    assert ALLOW.allowed and not DENY.allowed and not IMPLICIT.allowed


@pytest.mark.parametrize("deny_first", [True, False])
def test_explicit_deny_wins_across_and_within_documents(deny_first: bool) -> None:
    """Order must not matter: one matching Deny anywhere beats every Allow."""
    allow_all = parsed(permission("*"))
    deny_pull = parsed(permission("cr:Pull*", effect="Deny"))
    docs = [deny_pull, allow_all] if deny_first else [allow_all, deny_pull]
    assert evaluate(docs, "cr:PullRepository", REPO) is DENY
    assert evaluate(docs, "cr:GetRepository", REPO) is ALLOW
    statements = [statement("cr:*"), statement("cr:PullRepository", effect="Deny")]
    one = parsed(document(*(reversed(statements) if deny_first else statements)))
    assert evaluate([one], "cr:PullRepository", REPO) is DENY
    assert evaluate([one], "cr:ListRepository", REPO) is ALLOW


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("cr:*", "cr:PullRepository", ALLOW),
        ("cr:*", "ram:GetRole", IMPLICIT),
        ("cr:Pull*", "cr:PullRepository", ALLOW),
        ("cr:Pull*", "cr:PushRepository", IMPLICIT),
        ("cr:Pull*", "crx:PullRepository", IMPLICIT),
        ("*", "sae:DeployApplication", ALLOW),
        ("cr:PullRepositor?", "cr:PullRepository", ALLOW),
        ("cr:PullRepositor?", "cr:PullRepositories", IMPLICIT),
        ("CR:pullrepository", "cr:PullRepository", ALLOW),
        ("cr:PullRepository", "CR:PULLREPOSITORY", ALLOW),
        ("cr:Pull", "cr:PullRepository", IMPLICIT),
    ],
)
def test_action_wildcards_and_case(pattern: str, action: str, expected: Decision) -> None:
    """Actions match as RAM globs, ignoring case, and always whole-string."""
    assert evaluate([parsed(permission(pattern))], action, REPO) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("acs:cr:*:*:repository/cri-demo/*", REPO, ALLOW),
        ("acs:cr:*:*:repository/cri-demo/*", REPO.replace("cri-demo", "cri-other"), IMPLICIT),
        ("acs:cr:*:*:repository/CRI-DEMO/*", REPO, IMPLICIT),
        (f"acs:cr:cn-hangzhou:{ROLE_ACCOUNT}:repository/cri-demo/shop/web", REPO, ALLOW),
        (f"acs:cr:cn-shanghai:{ROLE_ACCOUNT}:repository/cri-demo/*", REPO, IMPLICIT),
        ("acs:cr:*:*:repository/cri-demo/shop/we?", REPO, ALLOW),
        ("acs:cr:*:*:repository/cri-demo/shop", REPO, IMPLICIT),
        ("acs:cr:*:*:repository/a[1]", "acs:cr:x:y:repository/a[1]", ALLOW),
        ("acs:cr:*:*:repository/a[1]", "acs:cr:x:y:repository/a1", IMPLICIT),
        ("*", REPO, ALLOW),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: Decision) -> None:
    """Resources match case-sensitively; only `*` and `?` are wildcards (brackets are literal)."""
    doc = parsed(permission("cr:PullRepository", resource=pattern))
    assert evaluate([doc], "cr:PullRepository", resource) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"acs:SourceVpc": "vpc-1"}}, {"acs:SourceVpc": "vpc-1"}, ALLOW),
        ({"StringEquals": {"acs:SourceVpc": "vpc-1"}}, {"acs:SourceVpc": "VPC-1"}, IMPLICIT),
        ({"StringEquals": {"acs:SourceVpc": ["a", "vpc-1"]}}, {"ACS:SOURCEVPC": "vpc-1"}, ALLOW),
        ({"StringEquals": {"acs:SourceVpc": "vpc-1"}}, {}, IMPLICIT),
        ({"StringNotEquals": {"acs:SourceVpc": "vpc-1"}}, {"acs:SourceVpc": "vpc-2"}, ALLOW),
        ({"StringNotEquals": {"acs:SourceVpc": "vpc-1"}}, {"acs:SourceVpc": "vpc-1"}, IMPLICIT),
        ({"StringNotEquals": {"acs:SourceVpc": "vpc-1"}}, {}, ALLOW),
        ({"StringEqualsIgnoreCase": {"k": "Prod"}}, {"k": "PROD"}, ALLOW),
        ({"StringNotEqualsIgnoreCase": {"k": "Prod"}}, {"k": "PROD"}, IMPLICIT),
        ({"StringLike": {"k": "release-*"}}, {"k": "release-1.2"}, ALLOW),
        ({"StringLike": {"k": "release-*"}}, {"k": "Release-1.2"}, IMPLICIT),
        ({"StringNotLike": {"k": "release-*"}}, {"k": "dev"}, ALLOW),
        ({"StringNotLike": {"k": "release-*"}}, {"k": "release-9"}, IMPLICIT),
        ({"Bool": {"acs:SecureTransport": True}}, {"acs:SecureTransport": "true"}, ALLOW),
        ({"Bool": {"acs:SecureTransport": True}}, {"acs:SecureTransport": "false"}, IMPLICIT),
        ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "10.1.2.3"}, ALLOW),
        ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "11.1.2.3"}, IMPLICIT),
        ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "not-an-ip"}, IMPLICIT),
        ({"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "11.1.2.3"}, ALLOW),
        ({"NotIpAddress": {"acs:SourceIp": ["10.0.0.1"]}}, {"acs:SourceIp": "10.0.0.1"}, IMPLICIT),
        ({"StringEquals": {"a": "1"}, "StringLike": {"b": "x*"}}, {"a": "1", "b": "xy"}, ALLOW),
        ({"StringEquals": {"a": "1"}, "StringLike": {"b": "x*"}}, {"a": "1", "b": "yx"}, IMPLICIT),
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, IMPLICIT),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], expected: Decision) -> None:
    """Values of one key are OR'd, keys and operators AND'd; a missing key fails positive tests."""
    doc = parsed(document(statement("cr:*", Condition=condition)))
    assert evaluate([doc], "cr:PullRepository", REPO, context) is expected


def test_a_deny_whose_condition_fails_does_not_deny() -> None:
    """Conditions gate Deny statements too: the Deny only bites outside the VPC."""
    doc = parsed(
        document(
            statement("cr:*"),
            statement(
                "cr:*", effect="Deny", Condition={"StringNotEquals": {"acs:SourceVpc": "vpc-1"}}
            ),
        )
    )
    assert evaluate([doc], "cr:PullRepository", REPO, {"acs:SourceVpc": "vpc-1"}) is ALLOW
    assert evaluate([doc], "cr:PullRepository", REPO, {"acs:SourceVpc": "vpc-9"}) is DENY


# -- trust evaluation ------------------------------------------------------------------------------

CALLER_ROOT = Principal(CALLER_ACCOUNT, "account")
CALLER_ROLE = Principal(CALLER_ACCOUNT, "role", "deployer")
CALLER_SAE = Principal(CALLER_ACCOUNT, "service", "sae.aliyuncs.com")
OWN_SAE = Principal(ROLE_ACCOUNT, "service", "sae.aliyuncs.com")


@pytest.mark.parametrize(
    ("policy", "who", "expected"),
    [
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:root"]), CALLER_ROOT, ALLOW),
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:root"]), CALLER_ROLE, ALLOW),
        (
            trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:root"]),
            Principal(THIRD_ACCOUNT, "account"),
            IMPLICIT,
        ),
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:root"]), CALLER_SAE, IMPLICIT),
        (trust(ram=[CALLER_ACCOUNT]), CALLER_ROOT, ALLOW),
        (trust(ram=[THIRD_ACCOUNT]), CALLER_ROOT, IMPLICIT),
        (trust(ram=["*"]), CALLER_ROOT, ALLOW),
        (trust(ram=["*"]), CALLER_ROLE, ALLOW),
        (trust(ram=["*"]), CALLER_SAE, IMPLICIT),
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:role/deployer"]), CALLER_ROLE, ALLOW),
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:role/Deployer"]), CALLER_ROLE, ALLOW),
        (trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:role/deployer"]), CALLER_ROOT, IMPLICIT),
        (
            trust(ram=[f"acs:ram::{CALLER_ACCOUNT}:role/deployer"]),
            Principal(CALLER_ACCOUNT, "role", "other"),
            IMPLICIT,
        ),
        (
            trust(ram=[f"acs:ram::{THIRD_ACCOUNT}:role/deployer"]),
            CALLER_ROLE,
            IMPLICIT,
        ),
        (trust(service=[f"{CALLER_ACCOUNT}@sae.aliyuncs.com"]), CALLER_SAE, ALLOW),
        (trust(service=[f"{CALLER_ACCOUNT}@SAE.aliyuncs.com"]), CALLER_SAE, ALLOW),
        (trust(service=[f"{CALLER_ACCOUNT}@sae.aliyuncs.com"]), OWN_SAE, IMPLICIT),
        (trust(service=[f"{CALLER_ACCOUNT}@sae.aliyuncs.com"]), CALLER_ROOT, IMPLICIT),
        (
            trust(service=[f"{CALLER_ACCOUNT}@sae.aliyuncs.com"]),
            Principal(CALLER_ACCOUNT, "service", "ecs.aliyuncs.com"),
            IMPLICIT,
        ),
        (trust(service=["sae.aliyuncs.com"]), OWN_SAE, ALLOW),
        (trust(service=["sae.aliyuncs.com"]), CALLER_SAE, IMPLICIT),
        (trust(service=["sae.aliyuncs.com"]), CALLER_ROOT, IMPLICIT),
        (trust(ram=["*"], Action="sts:*"), CALLER_ROOT, ALLOW),
        (trust(ram=["*"], effect="Deny"), CALLER_ROOT, DENY),
        (
            merged(trust(ram=["*"]), trust(ram=[CALLER_ACCOUNT], effect="Deny")),
            CALLER_ROOT,
            DENY,
        ),
        (
            merged(trust(ram=[CALLER_ACCOUNT], effect="Deny"), trust(ram=["*"])),
            CALLER_ROOT,
            DENY,
        ),
        (
            merged(trust(ram=["*"]), trust(ram=[CALLER_ACCOUNT], effect="Deny")),
            Principal(THIRD_ACCOUNT, "account"),
            ALLOW,
        ),
        (
            document(
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Federated": [f"acs:ram::{CALLER_ACCOUNT}:saml-provider/x"]},
                }
            ),
            CALLER_ROOT,
            IMPLICIT,
        ),
    ],
)
def test_trust_principals(policy: str, who: Principal, expected: Decision) -> None:
    """Who may assume a role owned by ROLE_ACCOUNT, for every principal form RAM documents."""
    assert trust_allows(parsed(policy, "trust"), who, ROLE_ACCOUNT) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"sts:ExternalId": "abc-123"}, ALLOW),
        ({"STS:EXTERNALID": "abc-123"}, ALLOW),
        ({"sts:ExternalId": "abc-124"}, IMPLICIT),
        ({}, IMPLICIT),
        (None, IMPLICIT),
    ],
)
def test_trust_external_id(context: dict[str, str] | None, expected: Decision) -> None:
    """An ExternalId condition admits only callers that present exactly that id."""
    policy = trust(ram=[CALLER_ACCOUNT], Condition={"StringEquals": {"sts:ExternalId": "abc-123"}})
    assert trust_allows(parsed(policy, "trust"), CALLER_ROOT, ROLE_ACCOUNT, context) is expected


# -- properties ------------------------------------------------------------------------------------

_SERVICES = ["cr", "ram", "sae", "sts"]
_VERBS = ["PullRepository", "GetRole", "ListRoles", "DeployApplication", "AssumeRole"]
_actions = st.builds(lambda s, v: f"{s}:{v}", st.sampled_from(_SERVICES), st.sampled_from(_VERBS))
_patterns = st.one_of(
    _actions,
    _actions.map(str.swapcase),
    _actions.map(lambda a: a[: len(a) // 2] + "*"),
    st.sampled_from(_SERVICES).map(lambda s: f"{s}:*"),
    st.just("*"),
)
_documents = st.lists(
    st.lists(
        st.builds(
            statement,
            st.lists(_patterns, min_size=1, max_size=3),
            st.just("*"),
            st.sampled_from(["Allow", "Deny"]),
        ),
        min_size=1,
        max_size=3,
    ).map(lambda statements: parsed(document(*statements))),
    max_size=4,
)
_RANK = {DENY: 0, IMPLICIT: 1, ALLOW: 2}


@given(docs=_documents, deny=st.lists(_patterns, min_size=1, max_size=3), action=_actions)
def test_adding_a_deny_never_grants(
    docs: list[PolicyDocument], deny: list[str], action: str
) -> None:
    """A Deny document can only make a decision stricter, and denies whatever it matches."""
    deny_doc = parsed(document(statement(deny, effect="Deny")))
    before = evaluate(docs, action, REPO)
    after = evaluate([*docs, deny_doc], action, REPO)
    assert _RANK[after] <= _RANK[before]
    # Reference matcher, independent of the evaluator: the patterns only use `*`.
    hit = any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), action, re.I) for p in deny)
    assert (after is DENY) == (before is DENY or hit)


_uids = st.integers(10**15, 10**16 - 1).map(str)


@given(
    listed=st.lists(_uids, min_size=1, max_size=4),
    caller=_uids,
    kind=st.sampled_from(["account", "role", "service"]),
    form=st.sampled_from(["uid", "root", "role", "service"]),
)
def test_unlisted_principals_never_match(
    listed: list[str],
    caller: str,
    kind: Literal["account", "role", "service"],
    form: str,
) -> None:
    """A caller whose account the trust policy does not name can never assume the role."""
    assume(caller not in listed)
    entry = {
        "uid": "{uid}",
        "root": "acs:ram::{uid}:root",
        "role": "acs:ram::{uid}:role/deployer",
        "service": "{uid}@sae.aliyuncs.com",
    }[form]
    names = [entry.format(uid=uid) for uid in listed]
    policy = trust(service=names) if form == "service" else trust(ram=names)
    name = {"account": "", "role": "deployer", "service": "sae.aliyuncs.com"}[kind]
    who = Principal(caller, kind, name)
    assert trust_allows(parsed(policy, "trust"), who, listed[0]) is IMPLICIT


_literal = (
    st.lists(
        st.one_of(
            st.sampled_from(["[", "]", "[a]", "[!b]", "[0-9]", "\\", ".", "/"]),
            st.text(st.characters(codec="utf-8", exclude_characters="*?")),
        ),
        min_size=1,
    )
    .map("".join)
    .filter(bool)
)


@given(resource=_literal, other=_literal)
def test_a_pattern_without_wildcards_matches_only_itself(resource: str, other: str) -> None:
    """Characters such as `[`, `]` or `.` in a resource are literal, never pattern syntax."""
    doc = parsed(permission("cr:*", resource=resource))
    assert evaluate([doc], "cr:PullRepository", resource) is ALLOW
    expected = ALLOW if other == resource else IMPLICIT
    assert evaluate([doc], "cr:PullRepository", other) is expected
