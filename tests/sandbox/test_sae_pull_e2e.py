"""Every image-pull condition end to end through the official SDKs: a good cross-account setup,
one condition broken, and the deploy failing at "Pull image" for exactly that reason.

The setup is made where the real product makes it: account B's RAM role, trust and pull policy,
cri-demo's internet endpoint and whitelist, the link of B's VPC (and of A's VPC shared with B) to
cri-demo's VPC endpoint, and account A's SAE secret. A condition with an API is broken through it;
the others (NAT, SNAT, CEN, the DNS step over CEN, region) by deploying into a namespace of the
lab world (`tests/sandbox/worlds/pull_lab.yaml`) that differs from the good one in that condition
alone. The deploy parameters and secrets are the good cases of `tests.support.pull_worlds`, changed
with the same breaks the store-level tests (`tests.sandbox.test_image_pull`) use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models

from sandbox.services.sae.image_pull import REASONS
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.policies import merged, trust
from tests.support.pull_worlds import (
    APP_IMAGE,
    APP_REGISTRY_HOST,
    APP_UID,
    CASES,
    EE_HOST,
    EE_VPC_HOST,
    EGRESS_IP,
    FORBIDDEN,
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
    REGISTRY_UID,
    ROLE_ARN,
    ROLE_NAME,
    SAE_DENY,
    TIMEOUT,
    UNAUTHORIZED,
    Break,
    PullCase,
    config,
    image,
    instance_scoped_pull_policy,
    no_credentials,
    pull_policy,
    pull_policy_without,
    sae_trust,
    secret,
)
from tests.support.sae_secrets import create as create_secret
from tests.support.sae_secrets import update as update_secret
from tests.support.sae_setup import (
    create_app,
    describe,
    instances,
    pull_reason,
    ready_cross_account,
    tasks,
    wait_for,
)
from tests.support.worlds import fresh_admin

LAB_WORLD = Path(__file__).parent / "worlds" / "pull_lab.yaml"
WRONG_PASSWORD = "not-the-password"
PULL_TASK = "Pull image"
WIRE = {
    "ImageUrl": "image_url",
    "AcrInstanceId": "acr_instance_id",
    "AcrAssumeRoleArn": "acr_assume_role_arn",
    "ImagePullSecrets": "image_pull_secrets",
}
"""A case's deploy parameters (wire names) as CreateApplicationRequest fields."""


@pytest.fixture(scope="module")
def lab_process() -> Iterator[SandboxProcess]:
    with SandboxProcess(world=LAB_WORLD) as process:
        yield process


@pytest.fixture
def lab_admin(lab_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    yield from fresh_admin(lab_process)


@pytest.fixture
def lab(lab_admin: SandboxAdmin, lab_process: SandboxProcess) -> SdkFactory:
    """SDK clients against the freshly reset lab sandbox."""
    return SdkFactory(lab_process.endpoint)


# -- the good setup, through the SDK ---------------------------------------------------------------


def enable_internet(sdk: SdkFactory, enable: bool = True) -> None:
    """Switch cri-demo's internet endpoint; switched on, wait until it is RUNNING (ACL writes
    before that are dropped)."""
    client = sdk.cr("registry")
    client.update_instance_endpoint_status(
        cr_models.UpdateInstanceEndpointStatusRequest(
            instance_id=INSTANCE_ID, endpoint_type="internet", enable=enable
        )
    )
    request = cr_models.GetInstanceEndpointRequest(
        instance_id=INSTANCE_ID, endpoint_type="internet"
    )
    deadline = time.monotonic() + 10
    while enable and client.get_instance_endpoint(request).body.status != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def link_vpc(sdk: SdkFactory, account: str, instance_id: str, vpc: str, vswitch: str) -> None:
    """Link a VPC to an instance's VPC endpoint and wait until the link is RUNNING."""
    client = sdk.cr(account)
    client.create_instance_vpc_endpoint_linked_vpc(
        cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
            instance_id=instance_id, vpc_id=vpc, vswitch_id=vswitch
        )
    )
    request = cr_models.GetInstanceVpcEndpointRequest(instance_id=instance_id)
    deadline = time.monotonic() + 10
    while any(
        link.vpc_id == vpc and link.status != "RUNNING"
        for link in client.get_instance_vpc_endpoint(request).body.linked_vpcs
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def ready_registry(sdk: SdkFactory) -> None:
    """Account B: public endpoint on with A's EIP whitelisted, its own VPC linked, pull role."""
    enable_internet(sdk)
    ready_cross_account(sdk)
    link_vpc(sdk, "registry", INSTANCE_ID, "vpc-reg", "vsw-reg-h")


def link_app_vpc(sdk: SdkFactory) -> None:
    """Account A links its VPC to its own instance."""
    link_vpc(sdk, "app", "cri-app", "vpc-app", "vsw-app-h")


def link_shared_app_vpc(sdk: SdkFactory) -> None:
    """Account B links account A's VPC, through the vSwitch A shares with B (VPC sharing)."""
    link_vpc(sdk, "registry", INSTANCE_ID, "vpc-app", "vsw-app-h")


@dataclass(frozen=True)
class Route:
    """A good case of `pull_worlds` (image and credentials), deployed in a lab namespace."""

    case: PullCase
    namespace: str = NAMESPACE_ID
    prepare: Callable[[SdkFactory], None] | None = None
    """A setup step of this route only."""


APP_VPC_IMAGE = APP_IMAGE.replace(APP_REGISTRY_HOST, "app-registry-vpc.cn-hangzhou.cr.aliyuncs.com")

ROUTES = {
    "ee-public-role": Route(CASES["ee-public-role"]),
    "ee-public-secret": Route(CASES["ee-public-secret"]),
    "same-account-vpc-linked": Route(
        replace(CASES["same-account"], image=APP_VPC_IMAGE), prepare=link_app_vpc
    ),
    "ee-vpc-shared-linked-role": Route(CASES["ee-vpc-linked-role"], prepare=link_shared_app_vpc),
    "ee-vpc-cen-role": Route(CASES["ee-vpc-cen-role"], namespace="cn-hangzhou:cen"),
    "ee-vpc-cen-cross-region-role": Route(CASES["ee-vpc-cen-role"], namespace="cn-shanghai:sh-cen"),
    "personal-public-role": Route(CASES["personal-public-role"]),
    "personal-public-secret": Route(CASES["personal-public-secret"]),
    "personal-vpc-role": Route(CASES["personal-vpc-role"]),
    "same-account": Route(CASES["same-account"]),
}


@dataclass(frozen=True)
class Attempt:
    """A route made ready (the case as broken, its secret's id) and, after `deploy`, deployed."""

    case: PullCase
    namespace: str
    secret_id: int | None
    app_id: str = ""
    change_order_id: str = ""

    @property
    def region(self) -> str:
        return self.namespace.partition(":")[0]


AccountBreak = Callable[[SdkFactory, Attempt], None]


def prepare(sdk: SdkFactory, route: Route, brk: Break | None = None) -> Attempt:
    """The good setup, the route's own step, and the case's secret (as `brk` changes it)."""
    ready_registry(sdk)
    if route.prepare is not None:
        route.prepare(sdk)
    case = brk(route.case) if brk else route.case
    secret_id = None
    if case.secret is not None:
        spec = case.secret
        made = create_secret(
            sdk.sae(region=spec.namespace_id.partition(":")[0]),
            "registry-login",
            spec.secret_data(),
            secret_type=spec.secret_type,
            namespace=spec.namespace_id,
        )
        secret_id = int(made.body.data.secret_id)
    return Attempt(case, route.namespace, secret_id)


def deploy(sdk: SdkFactory, ready: Attempt, namespace: str | None = None) -> Attempt:
    """CreateApplication with the case's parameters only (create_app's defaults left out)."""
    where = namespace or ready.namespace
    wire = ready.case.config(ready.secret_id)
    params: dict[str, Any] = {field: wire.get(name) for name, field in WIRE.items()}
    in_region = sdk.in_region(where.partition(":")[0])  # SAE answers in the namespace's region
    app_id, change_order_id = create_app(in_region, ROLE_ARN, namespace_id=where, **params)
    return replace(ready, namespace=where, app_id=app_id, change_order_id=change_order_id)


def pull_task(sdk: SdkFactory, change_order_id: str) -> Any:
    pipeline = describe(sdk, change_order_id).pipelines[0]
    return next(t for t in tasks(sdk, pipeline.pipeline_id) if t.task_name == PULL_TASK)


def assert_pulled(sdk: SdkFactory, admin: SandboxAdmin, done: Attempt) -> None:
    order = wait_for(sdk, done.change_order_id)
    assert (order.status, order.error_message) == (2, "success")
    pull = pull_task(sdk, done.change_order_id)
    assert (pull.status, pull.message) == (2, f'Successfully pulled image "{done.case.image}".')
    running = instances(sdk, done.app_id)
    assert [(i.image_url, i.instance_container_status) for i in running] == [
        (done.case.image, "Running")
    ] * 2
    assert pull_reason(admin, done.change_order_id, done.region) == ""


def assert_failed(
    sdk: SdkFactory, admin: SandboxAdmin, done: Attempt, reason: str, says: str
) -> None:
    order = wait_for(sdk, done.change_order_id)
    assert order.status == 3
    assert [p.status for p in order.pipelines] == [3]
    steps = tasks(sdk, order.pipelines[0].pipeline_id)
    pull = next(t for t in steps if t.task_name == PULL_TASK)
    assert (pull.status, pull.error_code) == (3, "ImagePullFailed")
    assert says in pull.error_message
    assert pull.error_message.startswith(("Failed to pull image ", "Failed to apply default"))
    assert not any(word in pull.error_message for word in (*PASSWORDS, WRONG_PASSWORD))
    assert order.error_message == pull.error_message
    assert [t.status for t in steps[steps.index(pull) + 1 :]] == [0] * 3
    states = {(i.image_url, i.instance_container_status) for i in instances(sdk, done.app_id)}
    assert states == {(done.case.image, "ErrImagePull")}
    assert pull_reason(admin, done.change_order_id, done.region) == reason


# -- good paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ROUTES))
def test_good_routes_deploy_and_run(lab: SdkFactory, lab_admin: SandboxAdmin, name: str) -> None:
    route = ROUTES[name]
    done = deploy(lab, prepare(lab, route))
    assert_pulled(lab.in_region(done.region), lab_admin, done)


# -- one condition broken --------------------------------------------------------------------------


RAM_ONLY_TRUST = trust(ram=[f"acs:ram::{APP_UID}:root"])
"""A trust policy naming the app account's RAM, not its SAE."""


def set_trust(sdk: SdkFactory, text: str) -> None:
    sdk.ram("registry").update_role(
        ram_models.UpdateRoleRequest(role_name=ROLE_NAME, new_assume_role_policy_document=text)
    )


def update_trust(text: str) -> AccountBreak:
    return lambda sdk, _: set_trust(sdk, text)


def new_policy_version(text: str) -> AccountBreak:
    """The pull policy's new default version."""

    def apply(sdk: SdkFactory, _: Attempt) -> None:
        sdk.ram("registry").create_policy_version(
            ram_models.CreatePolicyVersionRequest(
                policy_name=ROLE_NAME, policy_document=text, set_as_default=True
            )
        )

    return apply


def detach_policy(sdk: SdkFactory, _: Attempt) -> None:
    sdk.ram("registry").detach_policy_from_role(
        ram_models.DetachPolicyFromRoleRequest(
            policy_type="Custom", policy_name=ROLE_NAME, role_name=ROLE_NAME
        )
    )


def role_in_app_account(sdk: SdkFactory, _: Attempt) -> None:
    """The pull role made in the wrong account (its ARN is then deployed)."""
    sdk.ram("app").create_role(
        ram_models.CreateRoleRequest(role_name=ROLE_NAME, assume_role_policy_document=sae_trust())
    )


def disable_internet(sdk: SdkFactory, _: Attempt) -> None:
    enable_internet(sdk, enable=False)


def unwhitelist_egress(sdk: SdkFactory, _: Attempt) -> None:
    sdk.cr("registry").delete_instance_endpoint_acl_policy(
        cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id=INSTANCE_ID, endpoint_type="internet", entry=f"{EGRESS_IP}/32"
        )
    )


def unlink_registry_vpc(sdk: SdkFactory, _: Attempt) -> None:
    sdk.cr("registry").delete_instance_vpc_endpoint_linked_vpc(
        cr_models.DeleteInstanceVpcEndpointLinkedVpcRequest(
            instance_id=INSTANCE_ID, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
        )
    )


def wrong_secret_password(sdk: SdkFactory, ready: Attempt) -> None:
    """UpdateSecret with the right host and user but a wrong password."""
    assert ready.case.secret is not None and ready.secret_id is not None
    spec = replace(ready.case.secret, password=WRONG_PASSWORD)
    update_secret(sdk.sae(), ready.secret_id, spec.secret_data(), spec.namespace_id)


def keep(case: PullCase) -> PullCase:
    return case


@dataclass(frozen=True)
class Broken:
    """A good route with one condition broken."""

    route: str
    says: str
    """In the "Pull image" task's ErrorMessage: the family of the real pull's error."""
    deploy: Break = keep
    """A change to the deploy parameters, or to the secret as CreateSecret makes it."""
    account: AccountBreak | None = None
    """An API call made after the good setup."""
    namespace: str | None = None
    """A lab namespace differing from the route's in the broken (world-only) condition."""
    variant: str = ""
    """Tells apart two cases of one reason (the test id)."""


BREAKS: list[tuple[str, Broken]] = [
    (
        "image-reference-invalid",
        Broken("ee-public-role", "invalid reference format", image(f"{EE_HOST}/Shop/Web:1.1")),
    ),
    (
        "registry-unknown",
        Broken("ee-public-role", NO_HOST, image("nope-registry.cn-hangzhou.cr.aliyuncs.com/a/b:1")),
    ),
    (
        "vpc-domain-unresolved",
        Broken("ee-vpc-cen-role", NO_HOST, namespace="cn-hangzhou:cen-no-dns"),
    ),
    ("vpc-domain-other-region", Broken("ee-vpc-cen-role", TIMEOUT, namespace="cn-shanghai:sh")),
    ("vpc-not-connected", Broken("ee-vpc-cen-role", TIMEOUT, account=unlink_registry_vpc)),
    ("no-nat-gateway", Broken("ee-public-role", TIMEOUT, namespace="cn-hangzhou:no-nat")),
    ("no-snat-entry", Broken("ee-public-role", TIMEOUT, namespace="cn-hangzhou:other-vswitch")),
    (
        "no-snat-entry",
        Broken("ee-public-role", TIMEOUT, namespace="cn-hangzhou:snat-cidr", variant="by-cidr"),
    ),
    ("internet-endpoint-disabled", Broken("ee-public-role", TIMEOUT, account=disable_internet)),
    ("eip-not-whitelisted", Broken("ee-public-role", TIMEOUT, account=unwhitelist_egress)),
    ("no-credentials", Broken("ee-public-role", UNAUTHORIZED, no_credentials)),
    (
        "role-arn-invalid",
        Broken("ee-public-role", "InvalidParameter.RoleArn", config(AcrAssumeRoleArn=ROLE_NAME)),
    ),
    (
        "role-wrong-account",
        Broken(
            "ee-public-role",
            NO_INSTANCE,
            config(AcrAssumeRoleArn=f"acs:ram::{APP_UID}:role/{ROLE_NAME}"),
            account=role_in_app_account,
        ),
    ),
    (
        "role-missing",
        Broken(
            "ee-public-role",
            NO_ROLE,
            config(AcrAssumeRoleArn=f"acs:ram::{REGISTRY_UID}:role/{ROLE_NAME}-typo"),
        ),
    ),
    (
        "trust-denied",
        Broken("ee-public-role", NOT_TRUSTED, account=update_trust(merged(sae_trust(), SAE_DENY))),
    ),
    (
        "trust-wrong-account",
        Broken("ee-public-role", NOT_TRUSTED, account=update_trust(sae_trust(OTHER_UID))),
    ),
    (
        "trust-missing-sae",
        Broken("ee-public-role", NOT_TRUSTED, account=update_trust(RAM_ONLY_TRUST)),
    ),
    ("instance-id-missing", Broken("ee-public-role", UNAUTHORIZED, config(AcrInstanceId=None))),
    (
        "instance-id-mismatch",
        Broken("ee-public-role", NO_INSTANCE, config(AcrInstanceId="cri-nowhere")),
    ),
    ("policy-not-attached", Broken("ee-public-role", NO_TOKEN, account=detach_policy)),
    (
        "token-denied",
        Broken(
            "ee-public-role",
            NO_TOKEN,
            account=new_policy_version(
                merged(pull_policy(), pull_policy("cr:GetAuth*", effect="Deny"))
            ),
        ),
    ),
    (
        "token-not-allowed",
        Broken(
            "ee-public-role",
            NO_TOKEN,
            account=new_policy_version(pull_policy_without("cr:GetAuthorizationToken")),
        ),
    ),
    (
        "token-not-allowed",
        Broken(
            "ee-public-role",
            NO_TOKEN,
            account=new_policy_version(instance_scoped_pull_policy()),
            variant="scoped-to-the-instance",
        ),
    ),
    (
        "pull-denied",
        Broken(
            "ee-public-role",
            FORBIDDEN,
            account=new_policy_version(
                merged(pull_policy(), pull_policy("cr:Pull*", effect="Deny"))
            ),
        ),
    ),
    (
        "pull-not-allowed",
        Broken(
            "ee-public-role",
            FORBIDDEN,
            account=new_policy_version(pull_policy_without("cr:PullRepository")),
        ),
    ),
    ("secret-missing", Broken("ee-public-secret", UNAUTHORIZED, config(ImagePullSecrets="99"))),
    (
        "secret-wrong-namespace",
        Broken("ee-public-secret", UNAUTHORIZED, secret(namespace_id=ISOLATED_NAMESPACE_ID)),
    ),
    ("secret-wrong-type", Broken("ee-public-secret", UNAUTHORIZED, secret(secret_type="Opaque"))),
    (
        "secret-no-login-for-host",
        Broken("ee-public-secret", UNAUTHORIZED, secret(host=EE_VPC_HOST)),
    ),
    (
        "secret-login-rejected",
        Broken("ee-public-secret", UNAUTHORIZED, account=wrong_secret_password),
    ),
    ("repo-missing", Broken("ee-public-role", NOT_FOUND, image(f"{EE_HOST}/shop/nothing:1.1"))),
    (
        "tag-missing",
        Broken(
            "ee-public-role", f"{EE_HOST}/shop/web:9.9{NOT_FOUND}", image(f"{EE_HOST}/shop/web:9.9")
        ),
    ),
    (
        "digest-missing",
        Broken("ee-public-role", NOT_FOUND, image(f"{EE_HOST}/shop/web@sha256:ffff")),
    ),
]


def test_every_reason_has_an_end_to_end_case() -> None:
    assert sorted({reason for reason, _ in BREAKS}, key=REASONS.index) == list(REASONS)


@pytest.mark.parametrize(
    ("reason", "broken"),
    BREAKS,
    ids=[f"{reason}-{b.variant}" if b.variant else reason for reason, b in BREAKS],
)
def test_one_broken_condition_fails_the_deploy_for_its_reason(
    lab: SdkFactory, lab_admin: SandboxAdmin, reason: str, broken: Broken
) -> None:
    """The route deploys (test above); this one change makes it fail at "Pull image"."""
    ready = prepare(lab, ROUTES[broken.route], broken.deploy)
    if broken.account is not None:
        broken.account(lab, ready)
    done = deploy(lab, ready, broken.namespace)
    assert_failed(lab.in_region(done.region), lab_admin, done, reason, broken.says)


# -- changes in between count ----------------------------------------------------------------------


def wait_until_pending_pull(sdk: SdkFactory, change_order_id: str) -> None:
    """Poll DescribePipeline until the change order runs and its pull task has not started."""
    deadline = time.monotonic() + 5
    while describe(sdk, change_order_id).status != 1:
        assert time.monotonic() < deadline, "the change order did not start"
        time.sleep(0.05)
    assert pull_task(sdk, change_order_id).status == 0


def change_trust_before_the_pull(sdk: SdkFactory, change_order_id: str, text: str) -> None:
    """UpdateRole while the pull task is still ahead; checked after the change, so the pull
    judgment (which completes the task in the same transaction) must come later."""
    wait_until_pending_pull(sdk, change_order_id)
    set_trust(sdk, text)
    assert pull_task(sdk, change_order_id).status in (0, 1)


def test_trust_fixed_while_the_order_runs_lets_the_pull_succeed(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """On the demo world (3 s change orders, pull judged at 1.5 s)."""
    ready_cross_account(sdk)
    set_trust(sdk, RAM_ONLY_TRUST)
    app_id, change_order_id = create_app(sdk, ROLE_ARN)
    change_trust_before_the_pull(sdk, change_order_id, sae_trust())
    assert wait_for(sdk, change_order_id).status == 2
    assert {i.instance_container_status for i in instances(sdk, app_id)} == {"Running"}
    assert pull_reason(admin, change_order_id) == ""


def test_trust_broken_while_the_order_runs_fails_the_pull(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    ready_cross_account(sdk)
    app_id, change_order_id = create_app(sdk, ROLE_ARN)
    change_trust_before_the_pull(sdk, change_order_id, RAM_ONLY_TRUST)
    order = wait_for(sdk, change_order_id)
    assert order.status == 3
    assert NOT_TRUSTED in order.error_message
    assert {i.instance_container_status for i in instances(sdk, app_id)} == {"ErrImagePull"}
    assert pull_reason(admin, change_order_id) == "trust-missing-sae"
