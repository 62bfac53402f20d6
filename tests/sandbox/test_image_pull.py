"""The image-pull judgment without a server: every route a cross-account pull can take works, and
each condition broken alone fails with its own reason and a message in the real pull's words.

Each test seeds a fresh store from a world variant of `tests.support.pull_worlds`, so the judgment
reads exactly the documents the services write, and the variants are the ones end-to-end tests
reuse.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.services import cr
from sandbox.services.sae.image_pull import REASONS, PullVerdict, judge_image_pull
from sandbox.services.sae.namespaces import find_namespace
from sandbox.store import Doc, Store
from tests.support.policies import document, merged, statement, trust
from tests.support.pull_worlds import (
    APP_UID,
    CASES,
    DIGESTS,
    EE_HOST,
    EE_IMAGE,
    EE_VPC_HOST,
    EGRESS_IP,
    FORBIDDEN,
    GOOD_CASES,
    INSTANCE_ID,
    ISOLATED_NAMESPACE_ID,
    NAMESPACE_ID,
    NO_HOST,
    NO_INSTANCE,
    NO_ROLE,
    NO_TOKEN,
    NOT_FOUND,
    NOT_TRUSTED,
    OTHER_UID,
    PASSWORDS,
    PERSONAL_HOST,
    REGION,
    REGISTRY_UID,
    SAE_DENY,
    SHANGHAI_HOST,
    SHANGHAI_INSTANCE_ID,
    SHANGHAI_VPC_HOST,
    TIMEOUT,
    UNAUTHORIZED,
    Break,
    Data,
    Edit,
    PullCase,
    add_pull_role,
    add_shanghai_registry,
    config,
    connect_cen,
    edit_instance,
    image,
    instance_of,
    instance_scoped_pull_policy,
    link_vpc,
    no_credentials,
    policy_of,
    pull_policy,
    pull_policy_without,
    put_pull_role,
    region_of,
    resolve_in,
    role_of,
    sae_trust,
    secret,
    seeded_store,
    snat,
    variant,
    vpc_of,
    whitelist,
)


def judge(store: Store, case: PullCase, now: float | None = None) -> PullVerdict:
    """Judge the case's pull from `cn-hangzhou:demo` of account app, as the engine does."""
    with store.transaction() as tx:
        namespace = find_namespace(tx, APP_UID, NAMESPACE_ID)
        assert namespace is not None
        return judge_image_pull(
            tx,
            case.world(),
            app_account=APP_UID,
            region=REGION,
            namespace=namespace,
            config=case.config(),
            now=now,
        )


def verdict_of(path: Path, case: PullCase) -> PullVerdict:
    path.mkdir(parents=True, exist_ok=True)
    store = seeded_store(path / "state.db", case)
    try:
        return judge(store, case)
    finally:
        store.close()


def world(*edits: Edit) -> Break:
    return lambda case: case.edited(*edits)


def set_trust(text: str) -> Edit:
    return lambda data: role_of(data).update(trust_policy=text)


def set_policy(text: str) -> Edit:
    return lambda data: policy_of(data).update(document=text)


def internet(**fields: object) -> Edit:
    return lambda data: instance_of(data).setdefault("internet_endpoint", {}).update(fields)


def vpc_endpoint(**fields: object) -> Edit:
    return lambda data: instance_of(data).setdefault("vpc_endpoint", {}).update(fields)


SECOND_EIP = "47.96.10.21"


def eip_pool(data: Data) -> None:
    """vsw-app-h's SNAT entry leaves from two EIPs (`SnatIp` comma-separated)."""
    vpc_of(data)["nat_gateways"][0]["eips"].append({"id": "eip-app-2", "ip": SECOND_EIP})
    snat(data, {"source_vswitch": "vsw-app-h", "ip": f"{EGRESS_IP},{SECOND_EIP}"})


def shanghai_over_cen(data: Data) -> None:
    """The registry account's VPC in cn-shanghai, linked to cri-shanghai, CEN-connected to the
    app's VPC in cn-hangzhou, whose PrivateZone resolves the Shanghai -vpc domain."""
    region_of(data, "cn-shanghai").setdefault("vpcs", []).append(
        {
            "id": "vpc-reg-sh",
            "account": "registry",
            "cidr": "192.169.0.0/16",
            "vswitches": [{"id": "vsw-reg-sh", "cidr": "192.169.1.0/24", "zone": "cn-shanghai-b"}],
        }
    )
    link_vpc(data, "vpc-reg-sh", SHANGHAI_INSTANCE_ID)
    connect_cen(data, pair=("vpc-app", "vpc-reg-sh"), dns=False)
    resolve_in(data, domain=SHANGHAI_VPC_HOST)


def clear_roles(data: Data) -> None:
    data["ram"]["registry"]["roles"].clear()


def no_nat(data: Data) -> None:
    vpc_of(data)["nat_gateways"] = []


def second_registry_instance(data: Data) -> None:
    """Another Enterprise instance of the registry account: a token for it fails on cri-demo."""
    other = {**instance_of(data), "id": "cri-second", "name": "second"}
    data["regions"][REGION]["acr_instances"].append(other)


PULL_ONLY_WORKER = document(
    statement(["cr:GetAuthorizationToken"]),
    statement(["cr:PullRepository"], f"acs:cr:*:*:repository/{INSTANCE_ID}/shop/worker"),
)
TOKEN_ON_ANY_INSTANCE = document(
    statement(["cr:GetAuthorizationToken"], f"acs:cr:*:{REGISTRY_UID}:instance/*"),
    statement(["cr:PullRepository"], f"acs:cr:*:{REGISTRY_UID}:repository/shop-personal/web"),
)
"""The token scoped as the pre-issue-13 Personal Edition policy scoped it: on `instance/*`."""

BREAKS = [
    pytest.param(
        "ee-public-role",
        image(f"{EE_HOST}/Shop/Web:1.1"),
        "image-reference-invalid",
        "invalid reference format",
        id="invalid-reference",
    ),
    pytest.param(
        "ee-public-role",
        image("nope-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"),
        "registry-unknown",
        NO_HOST,
        id="unknown-host",
    ),
    pytest.param(
        "ee-public-role", image("shop/web:1.1"), "registry-unknown", NO_HOST, id="docker-hub"
    ),
    pytest.param(
        "ee-public-role",
        image(f"{EE_HOST}/shop/nothing:1.1"),
        "repo-missing",
        NOT_FOUND,
        id="missing-repo",
    ),
    pytest.param(
        "personal-public-role",
        image(f"{PERSONAL_HOST}/nobody/web:1.0"),
        "repo-missing",
        NOT_FOUND,
        id="personal-namespace-of-nobody",
    ),
    pytest.param(
        "ee-public-role",
        image(f"{EE_HOST}/shop/web:9.9"),
        "tag-missing",
        f"{EE_HOST}/shop/web:9.9{NOT_FOUND}",
        id="missing-tag",
    ),
    pytest.param(
        "ee-public-role",
        image(f"{EE_HOST}/shop/web"),
        "tag-missing",
        f"{EE_HOST}/shop/web:latest{NOT_FOUND}",
        id="default-tag-latest-missing",
    ),
    pytest.param(
        "ee-public-role",
        image(f"{EE_HOST}/shop/web@sha256:ffff"),
        "digest-missing",
        NOT_FOUND,
        id="missing-digest",
    ),
    pytest.param("ee-public-role", world(clear_roles), "role-missing", NO_ROLE, id="role-missing"),
    pytest.param(
        "personal-public-role",
        world(clear_roles),
        "role-missing",
        NO_ROLE,
        id="personal-role-missing",
    ),
    pytest.param(
        "ee-public-role",
        lambda case: case.edited(lambda d: add_pull_role(d, account="app")).with_config(
            AcrAssumeRoleArn=f"acs:ram::{APP_UID}:role/sae-pull"
        ),
        "role-wrong-account",
        NO_INSTANCE,
        id="role-of-the-app-account",
    ),
    pytest.param(
        "ee-public-role",
        config(AcrAssumeRoleArn="sae-pull"),
        "role-arn-invalid",
        "InvalidParameter.RoleArn",
        id="role-arn-malformed",
    ),
    pytest.param(
        "ee-public-role",
        world(set_trust(trust(ram=[f"acs:ram::{APP_UID}:root"]))),
        "trust-missing-sae",
        NOT_TRUSTED,
        id="trust-without-sae",
    ),
    pytest.param(
        "ee-public-role",
        world(set_trust(sae_trust(OTHER_UID))),
        "trust-wrong-account",
        NOT_TRUSTED,
        id="trust-names-another-accounts-sae",
    ),
    pytest.param(
        "ee-public-role",
        world(set_trust(merged(sae_trust(), SAE_DENY))),
        "trust-denied",
        NOT_TRUSTED,
        id="trust-deny",
    ),
    pytest.param(
        "ee-public-role",
        world(lambda d: role_of(d).update(attached=[])),
        "policy-not-attached",
        NO_TOKEN,
        id="policy-not-attached",
    ),
    pytest.param(
        "ee-public-role",
        world(set_policy(pull_policy_without("cr:PullRepository"))),
        "pull-not-allowed",
        FORBIDDEN,
        id="policy-lacks-pull",
    ),
    pytest.param(
        "ee-public-role",
        world(set_policy(PULL_ONLY_WORKER)),
        "pull-not-allowed",
        FORBIDDEN,
        id="policy-pulls-another-repo",
    ),
    pytest.param(
        "ee-public-role",
        world(set_policy(pull_policy_without("cr:GetAuthorizationToken"))),
        "token-not-allowed",
        NO_TOKEN,
        id="policy-lacks-token",
    ),
    pytest.param(
        "ee-public-role",
        world(set_policy(instance_scoped_pull_policy())),
        "token-not-allowed",
        NO_TOKEN,
        id="policy-scopes-token-to-the-instance",
    ),
    pytest.param(
        "personal-public-role",
        world(set_policy(TOKEN_ON_ANY_INSTANCE)),
        "token-not-allowed",
        NO_TOKEN,
        id="personal-policy-scopes-token-to-instances",
    ),
    pytest.param(
        "ee-public-role",
        world(set_policy(merged(pull_policy(), pull_policy("cr:Pull*", effect="Deny")))),
        "pull-denied",
        FORBIDDEN,
        id="policy-denies-pull",
    ),
    pytest.param(
        "personal-public-role",
        world(set_policy(merged(pull_policy(), pull_policy("cr:GetAuth*", effect="Deny")))),
        "token-denied",
        NO_TOKEN,
        id="policy-denies-token",
    ),
    pytest.param(
        "ee-public-role",
        config(AcrInstanceId=None),
        "instance-id-missing",
        UNAUTHORIZED,
        id="instance-id-missing",
    ),
    pytest.param(
        "ee-public-role",
        config(AcrInstanceId="cri-nowhere"),
        "instance-id-mismatch",
        NO_INSTANCE,
        id="instance-id-of-nothing",
    ),
    pytest.param(
        "ee-public-role",
        lambda case: case.edited(second_registry_instance).with_config(AcrInstanceId="cri-second"),
        "instance-id-mismatch",
        UNAUTHORIZED,
        id="instance-id-of-another-instance",
    ),
    pytest.param(
        "ee-public-secret",
        config(ImagePullSecrets="99"),
        "secret-missing",
        UNAUTHORIZED,
        id="secret-missing",
    ),
    pytest.param(
        "ee-public-secret",
        config(ImagePullSecrets="not-a-number"),
        "secret-missing",
        UNAUTHORIZED,
        id="secret-id-not-a-number",
    ),
    pytest.param(
        "ee-public-secret",
        secret(namespace_id=ISOLATED_NAMESPACE_ID),
        "secret-wrong-namespace",
        UNAUTHORIZED,
        id="secret-in-another-namespace",
    ),
    pytest.param(
        "ee-public-secret",
        secret(secret_type="Opaque"),
        "secret-wrong-type",
        UNAUTHORIZED,
        id="secret-opaque",
    ),
    pytest.param(
        "ee-public-secret",
        secret(password="not-the-password"),
        "secret-login-rejected",
        UNAUTHORIZED,
        id="secret-wrong-password",
    ),
    pytest.param(
        "personal-public-secret",
        secret(password="not-the-password"),
        "secret-login-rejected",
        UNAUTHORIZED,
        id="personal-secret-wrong-password",
    ),
    pytest.param(
        "ee-public-secret",
        secret(host=EE_VPC_HOST),
        "secret-no-login-for-host",
        UNAUTHORIZED,
        id="secret-for-another-host",
    ),
    pytest.param(
        "ee-public-role", no_credentials, "no-credentials", UNAUTHORIZED, id="no-credentials"
    ),
    pytest.param(
        "personal-public-secret",
        no_credentials,
        "no-credentials",
        UNAUTHORIZED,
        id="personal-no-credentials",
    ),
    pytest.param("ee-public-role", world(no_nat), "no-nat-gateway", TIMEOUT, id="no-nat"),
    pytest.param(
        "personal-public-role", world(no_nat), "no-nat-gateway", TIMEOUT, id="personal-no-nat"
    ),
    pytest.param(
        "ee-public-role", world(lambda d: snat(d)), "no-snat-entry", TIMEOUT, id="no-snat"
    ),
    pytest.param(
        "ee-public-role",
        world(lambda d: snat(d, {"source_vswitch": "vsw-app-b", "ip": EGRESS_IP})),
        "no-snat-entry",
        TIMEOUT,
        id="snat-for-another-vswitch",
    ),
    pytest.param(
        "ee-public-role",
        world(lambda d: snat(d, {"source_cidr": "172.16.2.0/24", "ip": EGRESS_IP})),
        "no-snat-entry",
        TIMEOUT,
        id="snat-cidr-not-covering",
    ),
    pytest.param(
        "ee-public-role",
        world(internet(enabled=False)),
        "internet-endpoint-disabled",
        TIMEOUT,
        id="internet-endpoint-disabled",
    ),
    pytest.param(
        "ee-public-role",
        world(internet(acl=[{"entry": "127.0.0.1/32"}, {"entry": "47.96.11.0/24"}])),
        "eip-not-whitelisted",
        TIMEOUT,
        id="eip-not-in-acl",
    ),
    pytest.param(
        "ee-public-role",
        world(eip_pool),
        "eip-not-whitelisted",
        TIMEOUT,
        id="one-eip-of-the-snat-pool-not-in-acl",
    ),
    pytest.param(
        "ee-vpc-linked-role",
        world(vpc_endpoint(linked_vpcs=["vpc-reg"])),
        "vpc-domain-unresolved",
        NO_HOST,
        id="vpc-not-linked-resolves-nowhere",
    ),
    pytest.param(
        "ee-vpc-cen-role",
        world(lambda d: vpc_of(d).pop("private_zones")),
        "vpc-domain-unresolved",
        NO_HOST,
        id="cen-without-the-dns-step",
    ),
    pytest.param(
        "ee-vpc-linked-role",
        world(vpc_endpoint(linked_vpcs=["vpc-reg"]), resolve_in),
        "vpc-not-connected",
        TIMEOUT,
        id="vpc-neither-linked-nor-cen",
    ),
    pytest.param(
        "ee-vpc-linked-role",
        lambda case: replace(
            case.edited(add_shanghai_registry, lambda d: resolve_in(d, domain=SHANGHAI_VPC_HOST)),
            image=f"{SHANGHAI_VPC_HOST}/shop/web:1.1",
            instance_id=SHANGHAI_INSTANCE_ID,
        ),
        "vpc-domain-other-region",
        TIMEOUT,
        id="vpc-domain-of-another-region-without-cen",
    ),
    pytest.param(
        "personal-vpc-role",
        image("registry-vpc.cn-shanghai.aliyuncs.com/shop-personal/web:1.0"),
        "vpc-domain-other-region",
        TIMEOUT,
        id="personal-vpc-domain-of-another-region",
    ),
]


def test_every_reason_is_exercised() -> None:
    assert {p.values[2] for p in BREAKS} == set(REASONS)


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.name)
def test_good_pulls_succeed(tmp_path: Path, case: PullCase) -> None:
    verdict = verdict_of(tmp_path, case)
    assert verdict == PullVerdict(ok=True, digest=DIGESTS[case.image])


@pytest.mark.parametrize(("base", "brk", "reason", "says"), BREAKS)
def test_each_condition_broken_alone_fails_with_its_reason(
    tmp_path: Path, base: str, brk: Break, reason: str, says: str
) -> None:
    """The base case passes (test above); the one edit makes it fail for exactly this reason."""
    case = brk(CASES[base])
    verdict = verdict_of(tmp_path, case)
    assert (verdict.ok, verdict.reason) == (False, reason)
    assert says in verdict.message
    assert verdict.message.startswith(("Failed to pull image ", "Failed to apply default image"))
    spoken = [*PASSWORDS, case.secret.password if case.secret else PASSWORDS[0]]
    assert not any(word in verdict.message for word in spoken)


EXTRA_GOOD = [
    pytest.param(
        "ee-public-role",
        world(lambda d: snat(d, {"source_cidr": "172.16.0.0/16", "ip": EGRESS_IP})),
        id="snat-by-covering-cidr",
    ),
    pytest.param(
        "ee-public-role",
        world(
            lambda d: vpc_of(d)["nat_gateways"][0]["eips"].append({"id": "eip-2", "ip": "8.8.8.8"}),
            lambda d: snat(
                d,
                {"source_cidr": "172.16.0.0/12", "ip": "8.8.8.8"},
                {"source_vswitch": "vsw-app-h", "ip": EGRESS_IP},
            ),
        ),
        id="most-specific-snat-wins",
    ),
    pytest.param(
        "ee-public-role",
        world(eip_pool, lambda d: whitelist(d, f"{SECOND_EIP}/32")),
        id="every-eip-of-the-snat-pool-in-acl",
    ),
    pytest.param(
        "ee-public-role",
        world(eip_pool, internet(acl=[{"entry": "47.96.10.0/24"}])),
        id="snat-pool-inside-one-acl-entry",
    ),
    pytest.param("ee-public-role", image(f"{EE_HOST}/shop/web@sha256:bbbb"), id="by-digest"),
    pytest.param("ee-public-role", world(internet(acl=[])), id="empty-internet-acl-is-open"),
    pytest.param(
        "ee-vpc-linked-role",
        lambda case: replace(
            case.edited(add_shanghai_registry, shanghai_over_cen),
            image=f"{SHANGHAI_VPC_HOST}/shop/web:1.1",
            instance_id=SHANGHAI_INSTANCE_ID,
        ),
        id="vpc-domain-of-another-region-over-cen",
    ),
    pytest.param(
        "ee-public-role",
        lambda case: replace(
            case.edited(add_shanghai_registry),
            image=f"{SHANGHAI_HOST}/shop/web:1.1",
            instance_id=SHANGHAI_INSTANCE_ID,
        ),
        id="public-domain-of-another-region",
    ),
    pytest.param(
        "ee-public-role",
        world(
            set_policy(
                document(
                    statement(["cr:GetAuthorizationToken"], "*"),
                    statement(
                        ["cr:PullRepository"],
                        f"acs:cr:{REGION}:{REGISTRY_UID}:repository/{INSTANCE_ID}/shop/web",
                    ),
                )
            )
        ),
        id="policy-scoped-as-acr-authenticates",
    ),
    pytest.param(
        "personal-public-role",
        world(
            set_policy(
                document(
                    statement(["cr:GetAuthorizationToken"], "*"),
                    statement(
                        ["cr:PullRepository"],
                        f"acs:cr:{REGION}:{REGISTRY_UID}:repository/shop-personal/web",
                    ),
                )
            )
        ),
        id="personal-policy-scoped-to-the-repository",
    ),
    pytest.param(
        "ee-public-role",
        lambda case: replace(
            case.edited(set_trust(merged(sae_trust(), SAE_DENY))),
            secret=CASES["ee-public-secret"].secret,
        ),
        id="broken-role-but-working-secret",
    ),
    pytest.param(
        "same-account",
        config(AcrAssumeRoleArn="acs:ram::2222222222222222:role/nothing", AcrInstanceId="x"),
        id="same-account-ignores-credentials",
    ),
]


@pytest.mark.parametrize(("base", "change"), EXTRA_GOOD)
def test_variants_that_still_pull(tmp_path: Path, base: str, change: Break) -> None:
    verdict = verdict_of(tmp_path, change(CASES[base]))
    assert verdict.ok, verdict


def test_the_first_credential_failure_is_reported_when_none_works(tmp_path: Path) -> None:
    case = replace(
        CASES["ee-public-role"].edited(clear_roles),
        secret=CASES["ee-public-secret"].secret,
    ).with_secret(password="wrong")
    assert verdict_of(tmp_path, case).reason == "role-missing"


def test_the_judgment_reads_live_state(tmp_path: Path) -> None:
    """Changes made after seeding (as API calls make them) count at the next judgment."""
    case = PullCase("live", variant(), EE_IMAGE, role=True, instance_id=INSTANCE_ID)
    store = seeded_store(tmp_path / "state.db", case)

    def acl(doc: Doc) -> None:
        doc["endpoints"]["Registry"]["internet"]["acl"].append(
            {"entry": f"{EGRESS_IP}/32", "comment": ""}
        )

    def disable(doc: Doc) -> None:
        doc["endpoints"]["Registry"]["internet"]["enabled"] = False

    try:
        assert judge(store, case).reason == "eip-not-whitelisted"
        with store.transaction() as tx:
            edit_instance(tx, acl)
        assert judge(store, case).reason == "role-missing"
        with store.transaction() as tx:
            put_pull_role(tx)
        assert judge(store, case).ok
        with store.transaction() as tx:
            put_pull_role(tx, policy=pull_policy_without("cr:PullRepository"))
        assert judge(store, case).reason == "pull-not-allowed"
        with store.transaction() as tx:
            edit_instance(tx, disable)
        assert judge(store, case).reason == "internet-endpoint-disabled"
    finally:
        store.close()


def test_a_vpc_link_counts_only_once_running(tmp_path: Path) -> None:
    """A link still CREATING neither resolves the -vpc domain nor carries the pull."""
    now = time.time()
    case = CASES["ee-vpc-linked-role"]
    store = seeded_store(tmp_path / "state.db", case)

    def creating(doc: Doc) -> None:
        for link in doc["endpoints"]["Registry"]["vpc"]["links"]:
            if link["vpc"] == "vpc-app":
                link["ready_at"] = now + 30

    try:
        with store.transaction() as tx:
            edit_instance(tx, creating)
        assert judge(store, case, now=now).reason == "vpc-domain-unresolved"
        assert judge(store, case, now=now + 31).ok
    finally:
        store.close()


def test_an_endpoint_switched_on_admits_pulls_only_once_running(tmp_path: Path) -> None:
    """Enabled but still CREATING (the world's transition time not yet over): no pull gets in."""
    now = time.time()
    case = CASES["ee-public-role"]
    store = seeded_store(tmp_path / "state.db", case)

    def switching_on(doc: Doc) -> None:
        doc["endpoints"]["Registry"]["internet"].update(enabled=True, settles_at=now + 30)

    try:
        with store.transaction() as tx:
            edit_instance(tx, switching_on)
        assert judge(store, case, now=now).reason == "internet-endpoint-disabled"
        assert judge(store, case, now=now + 31).ok
    finally:
        store.close()


def test_a_temporary_login_works_until_it_expires(tmp_path: Path) -> None:
    """A secret may hold a `GetAuthorizationToken` login; it stops working when it expires."""
    now = time.time()
    case = CASES["ee-public-secret"].with_secret(username=cr.TEMP_USERNAME, password="temp-token")
    store = seeded_store(tmp_path / "state.db", case)

    def issue(doc: Doc) -> None:
        expires = int((now + 3600) * 1000)
        doc["temp_logins"].append(
            {"username": cr.TEMP_USERNAME, "password": "temp-token", "expires_ms": expires}
        )

    try:
        assert judge(store, case, now=now).reason == "secret-login-rejected"
        with store.transaction() as tx:
            edit_instance(tx, issue)
        assert judge(store, case, now=now).ok
        later = judge(store, case, now=now + 7200)
        assert later.reason == "secret-login-rejected"
        assert "temp-token" not in later.message
    finally:
        store.close()


_CONTAINERD = (
    r'Failed to pull image "{given}": rpc error: code = Unknown desc = failed to pull and unpack '
    r'image "{ref}": failed to resolve reference "{ref}": '
)


def test_messages_read_like_the_real_pull(tmp_path: Path) -> None:
    """One full message per kind, and a domain always dials the same address."""
    base = CASES["ee-public-role"]
    prefix = _CONTAINERD.format(given=re.escape(EE_IMAGE), ref=re.escape(EE_IMAGE))
    head = re.escape(f'failed to do request: Head "https://{EE_HOST}/v2/shop/web/manifests/1.1": ')
    timeout = rf"{prefix}{head}dial tcp (\d+\.\d+\.\d+\.\d+):443: i/o timeout"

    unrouted = verdict_of(tmp_path / "a", world(no_nat)(base)).message
    blocked = verdict_of(tmp_path / "b", world(internet(enabled=False))(base)).message
    first, second = re.fullmatch(timeout, unrouted), re.fullmatch(timeout, blocked)
    assert first is not None and second is not None
    assert first.group(1) == second.group(1)

    untagged = f"{EE_HOST}/shop/web"
    missing = verdict_of(tmp_path / "c", image(untagged)(base)).message
    assert missing == (
        _CONTAINERD.format(given=untagged, ref=f"{untagged}:latest")
        + f"{untagged}:latest: not found"
    )
    denied = verdict_of(tmp_path / "d", config(AcrInstanceId=None)(base)).message
    assert denied.endswith(
        f"pulling from host {EE_HOST} failed with status code [manifests 1.1]: 401 Unauthorized"
    )
    unknown = verdict_of(
        tmp_path / "e", image("x-registry.cn-hangzhou.cr.aliyuncs.com/a/b:1")(base)
    )
    assert unknown.message.endswith(
        "dial tcp: lookup x-registry.cn-hangzhou.cr.aliyuncs.com: no such host"
    )
    role = verdict_of(tmp_path / "f", world(clear_roles)(base)).message
    assert role == (
        f'Failed to pull image "{EE_IMAGE}": failed to get ACR credential with role '
        f"acs:ram::{REGISTRY_UID}:role/sae-pull: assume role failed: EntityNotExist.Role: "
        "The specified Role not exists."
    )


def test_a_vpc_domain_dials_the_endpoint_address(tmp_path: Path) -> None:
    case = world(lambda d: region_of(d).update(cen=[]))(CASES["ee-vpc-cen-role"])
    store = seeded_store(tmp_path / "state.db", case)
    try:
        with store.transaction() as tx:
            found = cr.find_instance(tx, REGISTRY_UID, INSTANCE_ID)
        assert found is not None
        address = found[1]["endpoints"]["Registry"]["vpc"]["links"][0]["ip"]
        assert judge(store, case).message.endswith(f"dial tcp {address}:443: i/o timeout")
    finally:
        store.close()


# -- the order of the checks -----------------------------------------------------------------------

ORDERED_BREAKS: dict[str, Break] = {
    "no-snat-entry": world(lambda d: snat(d)),
    "internet-endpoint-disabled": world(internet(enabled=False)),
    "eip-not-whitelisted": world(internet(acl=[{"entry": "10.0.0.0/8"}])),
    "trust-denied": world(set_trust(merged(sae_trust(), SAE_DENY))),
    "instance-id-mismatch": config(AcrInstanceId="cri-nowhere"),
    "pull-not-allowed": world(set_policy(pull_policy_without("cr:PullRepository"))),
    "tag-missing": image(f"{EE_HOST}/shop/web:9.9"),
}
"""Independent breaks of `ee-public-role`, each failing a different stage of the pull."""


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(sorted(ORDERED_BREAKS))))
def test_the_earliest_broken_check_is_the_verdict(broken: set[str]) -> None:
    """Whatever else is broken, a pull fails where a real one first stops."""
    case = CASES["ee-public-role"]
    for reason in sorted(broken):
        case = ORDERED_BREAKS[reason](case)
    with tempfile.TemporaryDirectory() as directory:
        verdict = verdict_of(Path(directory), case)
    expected = min(broken, key=REASONS.index) if broken else ""
    assert (verdict.ok, verdict.reason) == (not broken, expected)
