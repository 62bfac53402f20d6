"""Account A's steps against the sandbox: network, pull secret, application, change order, verify.

Account B is prepared through the SDK (tests.support.sae_setup), so these tests depend on nothing
but the sandbox and the steps under test.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from alibabacloud_sae20190506 import models as sae_models
from pydantic import SecretStr

from blocks import AcrRegistryLogin
from crossdeploy.cloud import CloudError
from crossdeploy.plan import BLOCKED, OK
from crossdeploy.spec import DeploySpec
from sandbox.testing import SandboxAdmin
from tasks.application import (
    ApplicationResult,
    apply_application,
    desired_parameters,
    differences,
    inspect_application,
    remove_application,
)
from tasks.change_order import ChangeOrderOutcome, PollPolicy, Progress, follow_change_order
from tasks.network import SnatEntry, covering_entry, inspect_network
from tasks.registry_secret import (
    apply_registry_secret,
    inspect_registry_secret,
    remove_registry_secret,
)
from tasks.verify import app_instances, count_statuses, verify_application
from tests.support.clients import SdkFactory
from tests.support.sae_setup import (
    IMAGE,
    abnormal_release,
    grant_pull_role,
    ready_cross_account,
    wait_for,
    whitelist,
)
from tests.support.specs import DEMO_SPEC, make_spec
from tests.support.worlds import FAST_POLL

PASSWORD = "sandbox-registry-login"


def registry_login(password: str = PASSWORD) -> AcrRegistryLogin:
    return AcrRegistryLogin(username="registry@2222222222222222", password=SecretStr(password))


def deploy_app(creds_a: Any, spec: DeploySpec, role_arn: str | None) -> ApplicationResult:
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id=spec.image.instance_id
    )
    return apply_application(creds_a, state)


def finish(creds_a: Any, result: ApplicationResult) -> ChangeOrderOutcome:
    """Follow the change order the step started (quickly) to its end."""
    assert result.change_order_id is not None
    return follow_change_order(creds_a, result.change_order_id, timeout_seconds=30, poll=FAST_POLL)


def created_and_running(creds_a: Any, sdk: SdkFactory, spec: DeploySpec) -> tuple[str, str]:
    """Account B ready, the demo app created and its create order finished; (app id, role)."""
    role_arn = ready_cross_account(sdk)
    result = deploy_app(creds_a, spec, role_arn)
    outcome = finish(creds_a, result)
    assert outcome.succeeded, outcome.summary()
    return result.app_id, role_arn


def actions(admin: SandboxAdmin, name: str) -> list[dict[str, Any]]:
    return [r for r in admin.requests() if r["action"] == name]


# -- network ---------------------------------------------------------------------------------------


def test_network_finds_the_egress_eip_of_the_demo_namespace(
    fast_creds: dict[str, Any], fast_admin: SandboxAdmin
) -> None:
    state = inspect_network(fast_creds["app"], make_spec())
    assert (state.vpc_id, state.vpc_cidr) == ("vpc-app", "172.16.0.0/12")
    assert (state.vswitch_id, state.vswitch_cidr) == ("vsw-app-h", "172.16.1.0/24")
    assert state.security_group_id == "sg-app"
    assert (state.nat_gateway_id, state.egress_ip) == ("ngw-app", "47.96.10.20")
    assert state.cen_ids == ()
    [row] = state.rows
    assert (row.step, row.account, row.action) == ("network", "A", OK)
    assert row.resource == "vsw-app-h → ngw-app → 47.96.10.20"
    assert fast_admin.writes() == []


def test_network_blocks_a_vswitch_without_egress_over_the_public_domain(
    fast_creds: dict[str, Any],
) -> None:
    state = inspect_network(fast_creds["app"], make_spec(app={"namespace": "cn-hangzhou:isolated"}))
    assert state.egress_ip is None and state.blocked
    [row] = state.rows
    assert row.action == BLOCKED
    assert row.now == "no SNAT entry on any NAT"
    assert row.reason.startswith(
        "vsw-app-b (172.16.2.0/24) has no way to the internet, so SAE cannot reach "
        "demo-registry.cn-hangzhou.cr.aliyuncs.com. Add an SNAT entry for vsw-app-b on ngw-app, "
        "use a namespace whose vSwitch has one, or pull over the VPC domain "
        "(demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com)."
    )


def test_network_needs_no_egress_over_the_vpc_domain(fast_creds: dict[str, Any]) -> None:
    spec = make_spec(
        app={"namespace": "cn-hangzhou:isolated"},
        image={"url": "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"},
    )
    state = inspect_network(fast_creds["app"], spec)
    assert state.egress_ip is None and not state.blocked
    assert state.rows[0].action == OK and state.rows[0].wanted == "VPC domain"


def test_network_blocks_an_unknown_namespace(fast_creds: dict[str, Any]) -> None:
    state = inspect_network(fast_creds["app"], make_spec(app={"namespace": "cn-hangzhou:nope"}))
    [row] = state.rows
    assert row.action == BLOCKED
    assert "cn-hangzhou:nope does not exist" in row.reason
    assert "cn-hangzhou:demo, cn-hangzhou:isolated" in row.reason


def test_the_most_specific_snat_entry_wins() -> None:
    vpc_wide = SnatEntry("ngw-1", "", "172.16.0.0/12", ("1.1.1.1",))
    narrower = SnatEntry("ngw-1", "", "172.16.1.0/24", ("2.2.2.2",))
    by_vswitch = SnatEntry("ngw-2", "vsw-h", "172.16.1.0/24", ("3.3.3.3", "4.4.4.4"))
    elsewhere = SnatEntry("ngw-1", "vsw-b", "172.16.2.0/24", ("5.5.5.5",))
    assert covering_entry([vpc_wide, elsewhere], "vsw-h", "172.16.1.0/24") == vpc_wide
    assert covering_entry([vpc_wide, narrower], "vsw-h", "172.16.1.0/24") == narrower
    assert covering_entry([narrower, by_vswitch, vpc_wide], "vsw-h", "172.16.1.0/24") == by_vswitch
    assert covering_entry([elsewhere], "vsw-h", "172.16.1.0/24") is None


# -- registry secret -------------------------------------------------------------------------------


def test_secret_is_created_then_left_alone_then_updated_and_never_shows_the_password(
    fast_creds: dict[str, Any], fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    ns = spec.app.namespace_id
    seen: list[Any] = []

    first = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    assert (first.secret_id, first.secret_name, first.action) == (
        None,
        "acr_pull_shop_web",
        "create",
    )
    created = apply_registry_secret(creds_a, first, registry_login())
    assert created.secret_id > 0
    assert [(c.resource_type, c.action) for c in created.changes] == [("sae.secret", "created")]

    writes = len(fast_admin.writes())
    second = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    assert (second.secret_id, second.action) == (created.secret_id, OK)
    unchanged = apply_registry_secret(creds_a, second, registry_login())
    assert unchanged.changes == () and unchanged.secret_id == created.secret_id
    assert len(fast_admin.writes()) == writes

    rotated = registry_login("a-new-password")
    third = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=rotated)
    assert third.action == "update"
    assert third.rows[0].now == "login of registry@2222222222222222, another password"
    updated = apply_registry_secret(creds_a, third, rotated)
    assert [c.action for c in updated.changes] == ["updated"]
    assert [w["action"] for w in fast_admin.writes()[writes:]] == ["UpdateSecret"]
    assert inspect_registry_secret(creds_a, spec, namespace_id=ns, login=rotated).action == OK

    seen += [first, created, second, unchanged, third, updated]
    shown = repr(seen) + json.dumps(fast_admin.requests()) + json.dumps(fast_admin.state())
    for password in (PASSWORD, "a-new-password"):
        assert password not in shown


def test_secret_create_with_a_lost_reply_converges(
    fast_creds: dict[str, Any], fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    ns = spec.app.namespace_id
    state = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    fast_admin.set_faults({"action": "CreateSecret", "lose_response": True, "times": 1})
    result = apply_registry_secret(creds_a, state, registry_login())
    assert [c.action for c in result.changes] == ["created"]
    assert [r["code"] for r in actions(fast_admin, "CreateSecret")][-1] == "Secret.AlreadyExists"
    assert not any(w["action"] == "UpdateSecret" for w in fast_admin.writes())


LOST_THEN_REFUSED = "InvalidParameter.WithMessage"
"""What a retry after a lost reply is told in the tests below: any code at all (the real service
documents none for "already exists" or "not found" on these calls)."""


def lost_then_refused(admin: SandboxAdmin, action: str) -> None:
    """The first `action` lands but its reply is lost; the retry is refused with a generic code."""
    admin.set_faults(
        {"action": action, "lose_response": True, "times": 1},
        {"action": action, "error": LOST_THEN_REFUSED, "status": 400, "times": 1},
    )


def test_secret_create_converges_by_reading_the_secret_whatever_the_retry_is_told(
    fast_creds: dict[str, Any], fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    ns = spec.app.namespace_id
    state = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    lost_then_refused(fast_admin, "CreateSecret")
    result = apply_registry_secret(creds_a, state, registry_login())
    assert [c.action for c in result.changes] == ["created"]
    assert [r["code"] for r in actions(fast_admin, "CreateSecret")] == [
        "ServiceUnavailable",
        LOST_THEN_REFUSED,
    ]
    assert not any(w["action"] == "UpdateSecret" for w in fast_admin.writes())


def test_secret_delete_is_done_when_the_secret_is_no_longer_listed(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    ns = spec.app.namespace_id
    state = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    created = apply_registry_secret(creds_a, state, registry_login())
    lost_then_refused(fast_admin, "DeleteSecret")
    assert remove_registry_secret(creds_a, list(created.changes)) == []
    sae = fast_sdk.sae()
    assert sae.list_secrets(sae_models.ListSecretsRequest(namespace_id=ns)).body.data.secrets == []
    fast_admin.set_faults({"action": "DeleteSecret", "error": LOST_THEN_REFUSED, "status": 400})
    again = apply_registry_secret(
        creds_a,
        inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login()),
        registry_login(),
    )
    with pytest.raises(CloudError):  # still listed: the refusal stands
        remove_registry_secret(creds_a, list(again.changes))


def test_the_secret_method_pulls_and_teardown_removes_only_what_was_created(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a = fast_creds["app"]
    spec = make_spec(access={"method": "secret", "registry_login": "acr-login"})
    ns = spec.app.namespace_id
    whitelist(fast_sdk)  # no role: the secret is the only credential
    state = inspect_registry_secret(creds_a, spec, namespace_id=ns, login=registry_login())
    secret = apply_registry_secret(creds_a, state, registry_login())
    app_state = inspect_application(
        creds_a, spec, role_arn=None, secret_id=secret.secret_id, instance_id="cri-demo"
    )
    assert app_state.desired["ImagePullSecrets"] == str(secret.secret_id)
    assert "AcrAssumeRoleArn" not in app_state.desired
    app = apply_application(creds_a, app_state)
    outcome = finish(creds_a, app)
    assert outcome.succeeded, outcome.summary()

    changes = [*app.changes, *secret.changes]
    assert [c.action for c in remove_application(creds_a, changes)] == ["deleted"]
    assert [c.action for c in remove_registry_secret(creds_a, changes)] == ["deleted"]
    assert remove_application(creds_a, changes) == []
    assert remove_registry_secret(creds_a, changes) == []
    sae = fast_sdk.sae()
    apps = sae.list_applications(sae_models.ListApplicationsRequest()).body.data.applications
    secrets = sae.list_secrets(sae_models.ListSecretsRequest(namespace_id=ns)).body.data.secrets
    assert apps == [] and secrets == []


# -- application -----------------------------------------------------------------------------------


def test_desired_parameters_use_wire_names() -> None:
    spec = make_spec(
        app={"command": "/app/start.sh", "args": ["--port", "8080"], "envs": {"A": "1"}}
    )
    params = desired_parameters(
        spec, role_arn="acs:ram::2:role/r", secret_id=None, instance_id="cri-demo", vpc_id="vpc-app"
    )
    assert params == {
        "PackageType": "Image",
        "ImageUrl": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1",
        "Cpu": "1000",
        "Memory": "2048",
        "Replicas": "2",
        "NamespaceId": "cn-hangzhou:demo",
        "AcrInstanceId": "cri-demo",
        "AcrAssumeRoleArn": "acs:ram::2:role/r",
        "Command": "/app/start.sh",
        "CommandArgs": '["--port", "8080"]',
        "Envs": '[{"name": "A", "value": "1"}]',
        "VpcId": "vpc-app",
    }
    current = {
        **params,
        "Cpu": "1000",
        "CommandArgs": '["--port","8080"]',
        "Envs": '[{"value":"1","name":"A"}]',
        "ImagePullSecrets": "7",
        "VSwitchId": "vsw-app-h",
    }
    assert differences(params, current) == ("ImagePullSecrets",)


def test_app_is_created_and_followed_to_success_then_verified(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    role_arn = ready_cross_account(fast_sdk)
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    assert state.app_id is None
    assert state.rows[0].action == "create"
    assert state.rows[0].wanted == "1 core, 2 GiB, 2 replicas"
    result = apply_application(creds_a, state)
    assert result.action == "created" and result.change_order_id
    assert [(c.resource_type, c.action) for c in result.changes] == [
        ("sae.application", "created"),
        ("sae.change-order", "started"),
    ]
    outcome = finish(creds_a, result)
    assert outcome.succeeded and not outcome.timed_out
    assert "succeeded" in outcome.summary()
    verified = verify_application(creds_a, result.app_id, 2)
    assert verified.ok and verified.instance_statuses == {"Running": 2}
    assert verified.summary() == "2 of 2 instances running"


def test_an_identical_second_run_writes_nothing(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    app_id, role_arn = created_and_running(creds_a, fast_sdk, spec)
    writes = len(fast_admin.writes())
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    assert (state.app_id, state.differences, state.rows[0].action) == (app_id, (), OK)
    result = apply_application(creds_a, state)
    assert (result.action, result.change_order_id, result.changes) == ("unchanged", None, ())
    assert len(fast_admin.writes()) == writes


def test_a_changed_replica_count_deploys_naming_replicas(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    creds_a = fast_creds["app"]
    app_id, role_arn = created_and_running(creds_a, fast_sdk, make_spec())
    spec = make_spec(app={"replicas": 3})
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    assert state.differences == ("Replicas",)
    assert state.rows[0].action == "deploy (Replicas)"
    assert state.rows[0].now == "1 core, 2 GiB, 2 replicas"
    result = apply_application(creds_a, state)
    assert result.action == "deployed" and result.app_id == app_id
    outcome = finish(creds_a, result)
    assert outcome.succeeded
    assert verify_application(creds_a, app_id, 3).ok


def test_a_changed_image_shows_the_image_now_and_wanted(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    """The plan row names the field that changes; the size alone would read the same twice."""
    creds_a = fast_creds["app"]
    _, role_arn = created_and_running(creds_a, fast_sdk, make_spec())
    url = DEMO_SPEC["image"]["url"]
    older = url.rsplit(":", 1)[0] + ":1.0"
    spec = make_spec(image={"url": older}, app={"replicas": 3})
    row = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    ).rows[0]
    assert (row.now, row.wanted) == (f"ImageUrl {url}", f"ImageUrl {older} (+1 more)")


def _containers(sdk: SdkFactory, app_id: str) -> tuple[list[str], list[str]]:
    """(sidecar names, init container names) the app has now."""
    config = (
        sdk.sae()
        .describe_application_config(sae_models.DescribeApplicationConfigRequest(app_id=app_id))
        .body.data
    )
    sidecars = [c.name for c in config.sidecar_containers_config or []]
    return sidecars, [c.name for c in config.init_containers_config or []]


def test_a_deploy_keeps_the_containers_it_does_not_set(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    """Sidecars and init containers set outside the spec (in the console; here through the SDK)
    survive a deploy, which sends only what the spec sets; an `app.advanced` list the spec does
    set is sent, `[]` (none) included."""
    creds_a = fast_creds["app"]
    app_id, role_arn = created_and_running(creds_a, fast_sdk, make_spec())
    console = fast_sdk.sae().deploy_application(
        sae_models.DeployApplicationRequest(
            app_id=app_id,
            sidecar_containers_config=[
                sae_models.SidecarContainerConfig(name="envoy", image_url=IMAGE, cpu=500)
            ],
            init_containers_config=[
                sae_models.InitContainerConfig(name="migrate", image_url=IMAGE, command="/migrate")
            ],
        )
    )
    assert wait_for(fast_sdk, str(console.body.data.change_order_id)).status == 2
    assert _containers(fast_sdk, app_id) == (["envoy"], ["migrate"])

    result = deploy_app(creds_a, make_spec(app={"replicas": 3}), role_arn)
    assert result.action == "deployed" and finish(creds_a, result).succeeded
    assert _containers(fast_sdk, app_id) == (["envoy"], ["migrate"])

    no_init = make_spec(app={"replicas": 3, "advanced": {"InitContainersConfig": []}})
    result = deploy_app(creds_a, no_init, role_arn)
    assert result.changes[0].detail == "InitContainersConfig"
    assert finish(creds_a, result).succeeded
    assert _containers(fast_sdk, app_id) == (["envoy"], [])


def test_a_lost_create_reply_converges_to_exactly_one_app(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    role_arn = ready_cross_account(fast_sdk)
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    fast_admin.set_faults({"action": "CreateApplication", "lose_response": True, "times": 1})
    result = apply_application(creds_a, state)
    codes = [r["code"] for r in actions(fast_admin, "CreateApplication")]
    assert codes[-1] == "Application.AlreadyExists"
    assert result.action == "created" and result.change_order_id
    assert finish(creds_a, result).succeeded
    apps = (
        fast_sdk.sae()
        .list_applications(sae_models.ListApplicationsRequest(app_name="shop-web"))
        .body.data.applications
    )
    assert [a.app_id for a in apps] == [result.app_id]


def test_a_failed_create_converges_by_reading_the_app_whatever_the_retry_is_told(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    role_arn = ready_cross_account(fast_sdk)
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    lost_then_refused(fast_admin, "CreateApplication")
    result = apply_application(creds_a, state)
    codes = [r["code"] for r in actions(fast_admin, "CreateApplication")]
    assert codes == ["ServiceUnavailable", LOST_THEN_REFUSED]
    assert result.action == "created" and result.change_order_id
    assert finish(creds_a, result).succeeded


def test_a_create_refused_while_the_system_upgrades_is_retried(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    """`System.Upgrading` is "try again later" in SAE's error table: retried like a 5xx."""
    creds_a, spec = fast_creds["app"], make_spec()
    role_arn = ready_cross_account(fast_sdk)
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    fast_admin.set_faults(
        {"action": "CreateApplication", "error": "System.Upgrading", "status": 400, "times": 2}
    )
    result = apply_application(creds_a, state)
    codes = [r["code"] for r in actions(fast_admin, "CreateApplication")]
    assert codes == ["System.Upgrading", "System.Upgrading", None]
    assert result.action == "created"


def test_a_deploy_refused_for_the_apps_status_is_tried_again(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    """`Application.InvalidStatus` ("try again later") waits and retries like a running order."""
    creds_a = fast_creds["app"]
    _, role_arn = created_and_running(creds_a, fast_sdk, make_spec())
    spec = make_spec(app={"replicas": 3})
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    busy = {"action": "DeployApplication", "error": "Application.InvalidStatus", "status": 400}
    fast_admin.set_faults({**busy, "times": 1})
    result = apply_application(creds_a, state, wait_seconds=30)
    codes = [r["code"] for r in actions(fast_admin, "DeployApplication")]
    assert codes == ["Application.InvalidStatus", None]
    assert result.action == "deployed" and finish(creds_a, result).succeeded


def test_a_deploy_waits_out_a_running_change_order(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a = fast_creds["app"]
    app_id, role_arn = created_and_running(creds_a, fast_sdk, make_spec())
    other = fast_sdk.sae().deploy_application(
        sae_models.DeployApplicationRequest(app_id=app_id, replicas=2)
    )
    spec = make_spec(app={"replicas": 3})
    state = inspect_application(
        creds_a, spec, role_arn=role_arn, secret_id=None, instance_id="cri-demo"
    )
    result = apply_application(creds_a, state, wait_seconds=30)
    codes = [r["code"] for r in actions(fast_admin, "DeployApplication")]
    assert "Application.ChangerOrderRunning" in codes
    assert result.change_order_id != other.body.data.change_order_id
    assert finish(creds_a, result).succeeded
    assert verify_application(creds_a, app_id, 3).ok


def test_a_deploy_does_not_wait_on_an_order_left_abnormal(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    """Another release whose batch 2 failed stays executing (SubStatus 1) until someone rolls it
    back: the deploy says so at once instead of retrying until its wait runs out."""
    creds_a = fast_creds["app"]
    app_id, role_arn = created_and_running(creds_a, fast_sdk, make_spec(app={"replicas": 4}))
    other = abnormal_release(fast_sdk, app_id, IMAGE.replace(":1.1", ":1.0"))
    state = inspect_application(
        creds_a,
        make_spec(app={"replicas": 3}),
        role_arn=role_arn,
        secret_id=None,
        instance_id="cri-demo",
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError) as refused:
        apply_application(creds_a, state, wait_seconds=20)
    assert time.monotonic() - started < 5
    assert f"Change order {other[:8]}… failed at batch 2/2" in str(refused.value)
    assert "until that order is rolled back or aborted" in str(refused.value)
    assert [r["code"] for r in actions(fast_admin, "DeployApplication")][-1:] == [
        "Application.ChangerOrderRunning"
    ]
    assert len(actions(fast_admin, "DeployApplication")) == 2  # the SDK's and this one


# -- change orders and verification ----------------------------------------------------------------


def test_follow_reports_progress_batch_by_batch_up_to_done(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    creds_a = fast_creds["app"]
    app_id, _ = created_and_running(creds_a, fast_sdk, make_spec())
    strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": "auto"}}
    order = (
        fast_sdk.sae()
        .deploy_application(
            sae_models.DeployApplicationRequest(app_id=app_id, update_strategy=json.dumps(strategy))
        )
        .body.data.change_order_id
    )
    seen: list[Progress] = []
    outcome = follow_change_order(
        creds_a, order, timeout_seconds=30, on_progress=seen.append, poll=FAST_POLL
    )
    assert outcome.succeeded and outcome.batches == 2
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(set(fractions)) >= 3
    assert {p.batches for p in seen} == {2} and {p.batch for p in seen} == {1, 2}
    assert any(p.stage == "Deploy" and p.task for p in seen)
    assert all(p.console_url.endswith(f"changeOrderId={order}&regionId=cn-hangzhou") for p in seen)
    assert seen[-1].line().startswith("batch 2 of 2")


def test_a_failed_pull_is_diagnosed_and_the_instances_show_it(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    creds_a, spec = fast_creds["app"], make_spec()
    role_arn = grant_pull_role(fast_sdk)  # no whitelist entry for the EIP
    result = deploy_app(creds_a, spec, role_arn)
    outcome = finish(creds_a, result)
    assert not outcome.succeeded and outcome.status == 3
    assert (outcome.failed_batch, outcome.failed_stage, outcome.failed_task) == (
        1,
        "Deploy",
        "Pull image",
    )
    assert "i/o timeout" in outcome.task_error
    assert outcome.summary().startswith(
        f'Change order {outcome.change_order_id[:8]}… failed at batch 1/1, stage "Deploy", '
        'task "Pull image"'
    )
    verified = verify_application(creds_a, result.app_id, 2)
    assert not verified.ok
    assert verified.instance_statuses == {"ErrImagePull": 2}
    assert count_statuses(app_instances(creds_a, result.app_id)) == {"ErrImagePull": 2}
    assert verified.summary() == "0 of 2 instances running: 2 × ErrImagePull"  # noqa: RUF001


def test_manual_batches_are_waited_on_in_words_and_backoff_saves_polls(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    creds_a = fast_creds["app"]
    app_id, _ = created_and_running(creds_a, fast_sdk, make_spec())
    strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": "manual"}}
    order = (
        fast_sdk.sae()
        .deploy_application(
            sae_models.DeployApplicationRequest(app_id=app_id, update_strategy=json.dumps(strategy))
        )
        .body.data.change_order_id
    )
    wait_for(fast_sdk, order, until={8})

    def polls_during(poll: PollPolicy, seen: list[Progress]) -> int:
        before = len(actions(fast_admin, "DescribeChangeOrder"))
        pipelines = len(actions(fast_admin, "DescribePipeline"))
        outcome = follow_change_order(
            creds_a, order, timeout_seconds=4, on_progress=seen.append, poll=poll
        )
        assert outcome.timed_out and outcome.status == 8 and not outcome.succeeded
        assert "waiting for the next batch to be confirmed" in outcome.summary()
        assert len(actions(fast_admin, "DescribePipeline")) == pipelines  # nothing runs
        return len(actions(fast_admin, "DescribeChangeOrder")) - before

    seen: list[Progress] = []
    fixed = polls_during(PollPolicy(initial_seconds=0.5, factor=1.0, max_seconds=0.5), [])
    backing_off = polls_during(PollPolicy(), seen)
    assert backing_off < fixed
    assert {p.state for p in seen} == {"waiting for the next batch to be confirmed"}
    assert {(p.batch, p.batches) for p in seen} == {(2, 2)}
    assert seen[-1].fraction == pytest.approx(0.5)


# -- as Prefect tasks ------------------------------------------------------------------------------


def test_the_steps_run_as_prefect_tasks_with_a_progress_artifact(
    prefect_harness: None, fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    from prefect import flow
    from prefect.artifacts import Artifact

    from tasks import application, image, network, registry_secret
    from tasks.change_order import follow
    from tasks.step import Accounts, Inspection, Step
    from tasks.verify import verify_app

    creds_a = fast_creds["app"]
    spec = make_spec(access={"method": "secret", "registry_login": "acr-login"})
    accounts = Accounts(creds_a, fast_creds["registry"], "A", "B", registry_login())
    whitelist(fast_sdk)

    @flow
    def deploy() -> tuple[Any, ...]:
        found = Inspection()
        reads: tuple[Step[Any, Any], ...] = (network.STEP, image.STEP, registry_secret.STEP)
        for step in reads:
            found = found.with_state(step, step.inspect_task(accounts, spec, found))
        secret_step = registry_secret.STEP
        secret = secret_step.apply_task(accounts, found.of(secret_step))
        found = found.with_state(secret_step, secret_step.landed(found.of(secret_step), secret))
        state = application.STEP.inspect_task(accounts, spec, found)
        app = application.STEP.apply_task(accounts, state)
        assert app.change_order_id is not None
        outcome = follow(creds_a, app.change_order_id, timeout_seconds=30)
        net = found.of(network.STEP)
        return net, secret, app, outcome, verify_app(creds_a, app.app_id, 2)

    net, secret, app, outcome, verified = deploy()
    assert net.egress_ip == "47.96.10.20" and app.action == "created"
    assert outcome.succeeded and verified.ok
    artifact: Any = Artifact.get(f"change-order-{app.change_order_id}")  # a sync call here
    assert artifact is not None and artifact.data == 100.0
    assert PASSWORD not in repr((net, secret, app, outcome, verified))
