"""SAE applications and change orders through the official SDK, on a fast-timing sandbox."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.testing import SandboxAdmin
from tests.support.clients import SdkFactory
from tests.support.sae_setup import (
    IMAGE,
    abnormal_release,
    create_app,
    describe,
    instances,
    pull_reason,
    ready_cross_account,
    status,
    tasks,
    unwhitelist,
    wait_for,
    whitelist,
)


@pytest.fixture
def role(fast_sdk: SdkFactory) -> str:
    return ready_cross_account(fast_sdk)


def deploy(sdk: SdkFactory, app_id: str, **params: Any) -> str:
    request = sae_models.DeployApplicationRequest(app_id=app_id, **params)
    return str(sdk.sae().deploy_application(request).body.data.change_order_id)


def test_create_runs_a_change_order_to_success(fast_sdk: SdkFactory, role: str) -> None:
    app_id, change_order_id = create_app(
        fast_sdk, role, envs='[{"name":"LOG_LEVEL","value":"info"}]'
    )
    first = describe(fast_sdk, change_order_id)
    assert first.status in (0, 1)
    assert first.co_type_code == "CoCreateApp"
    done = wait_for(fast_sdk, change_order_id)
    assert done.status == 2
    assert [p.status for p in done.pipelines] == [2]
    steps = tasks(fast_sdk, done.pipelines[0].pipeline_id)
    assert all(t.status == 2 for t in steps)
    assert any(t.task_name == "Pull image" and IMAGE in t.message for t in steps)

    running = instances(fast_sdk, app_id)
    assert len(running) == 2
    assert {i.instance_container_status for i in running} == {"Running"}
    assert {i.image_url for i in running} == {IMAGE}
    assert all(i.instance_container_ip.startswith("172.16.1.") for i in running)

    app_status = status(fast_sdk, app_id)
    assert (app_status.current_status, app_status.running_instances) == ("RUNNING", 2)
    assert (app_status.last_change_order_status, app_status.last_change_order_running) == (
        "SUCCESS",
        False,
    )

    sae = fast_sdk.sae()
    config = sae.describe_application_config(
        sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    ).body.data
    assert (config.cpu, config.memory, config.replicas) == (1000, 2048, 2)
    assert (config.image_url, config.acr_instance_id, config.acr_assume_role_arn) == (
        IMAGE,
        "cri-demo",
        role,
    )
    assert (config.vpc_id, config.v_switch_id, config.security_group_id) == (
        "vpc-app",
        "vsw-app-h",
        "sg-app",
    )
    assert json.loads(config.envs) == [{"name": "LOG_LEVEL", "value": "info"}]

    versions = sae.list_app_versions(sae_models.ListAppVersionsRequest(app_id=app_id)).body.data
    assert len(versions) == 1 and versions[0].build_package_url == IMAGE
    orders = sae.list_change_orders(sae_models.ListChangeOrdersRequest(app_id=app_id)).body.data
    assert [(o.change_order_id, o.status) for o in orders.change_order_list] == [
        (change_order_id, 2)
    ]
    listed = sae.list_applications(sae_models.ListApplicationsRequest(app_name="shop")).body.data
    assert [(a.app_name, a.running_instances) for a in listed.applications] == [("shop-web", 2)]


def test_deploy_records_versions_and_rollback_returns(
    fast_sdk: SdkFactory, fast_admin: SandboxAdmin, role: str
) -> None:
    app_id, created = create_app(fast_sdk, role)
    wait_for(fast_sdk, created)
    older = IMAGE.replace(":1.1", ":1.0")
    assert wait_for(fast_sdk, deploy(fast_sdk, app_id, image_url=older)).status == 2
    assert {i.image_url for i in instances(fast_sdk, app_id)} == {older}

    missing = IMAGE.replace(":1.1", ":9.9")
    failed = wait_for(fast_sdk, deploy(fast_sdk, app_id, image_url=missing))
    assert failed.status == 3
    assert pull_reason(fast_admin, failed.change_order_id) == "tag-missing"
    states = sorted((i.image_url, i.instance_container_status) for i in instances(fast_sdk, app_id))
    assert states == [(older, "Running")] * 2 + [(missing, "ErrImagePull")] * 2
    assert status(fast_sdk, app_id).sub_status == "RUNNING_BUT_HAS_ERROR"

    sae = fast_sdk.sae()
    versions = sae.list_app_versions(sae_models.ListAppVersionsRequest(app_id=app_id)).body.data
    assert [v.build_package_url for v in versions] == [missing, older, IMAGE]  # failed one too
    rollback = sae.rollback_application(
        sae_models.RollbackApplicationRequest(app_id=app_id, version_id=versions[2].id)
    ).body.data.change_order_id
    done = wait_for(fast_sdk, rollback)
    assert (done.status, done.co_type_code) == (2, "CoRollback")
    assert {(i.image_url, i.instance_container_status) for i in instances(fast_sdk, app_id)} == {
        (IMAGE, "Running")
    }
    assert status(fast_sdk, app_id).sub_status == "NORMAL"


def test_a_deploy_keeps_containers_it_is_not_given_and_an_empty_list_removes_them(
    fast_sdk: SdkFactory, role: str
) -> None:
    sidecar = sae_models.SidecarContainerConfig(name="envoy", image_url=IMAGE, cpu=500)
    init = sae_models.InitContainerConfig(name="migrate", image_url=IMAGE, command="/migrate")
    app_id, created = create_app(
        fast_sdk, role, sidecar_containers_config=[sidecar], init_containers_config=[init]
    )
    wait_for(fast_sdk, created)

    def containers() -> tuple[list[str], list[str]]:
        config = (
            fast_sdk.sae()
            .describe_application_config(sae_models.DescribeApplicationConfigRequest(app_id=app_id))
            .body.data
        )
        return (
            [c.name for c in config.sidecar_containers_config or []],
            [c.name for c in config.init_containers_config or []],
        )

    assert containers() == (["envoy"], ["migrate"])
    assert wait_for(fast_sdk, deploy(fast_sdk, app_id, replicas=3)).status == 2
    assert containers() == (["envoy"], ["migrate"])
    assert wait_for(fast_sdk, deploy(fast_sdk, app_id, init_containers_config=[])).status == 2
    assert containers() == (["envoy"], [])
    assert wait_for(fast_sdk, deploy(fast_sdk, app_id, sidecar_containers_config=[])).status == 2
    assert containers() == ([], [])


def test_one_change_order_at_a_time(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role)
    for attempt in (
        lambda: deploy(fast_sdk, app_id, replicas=3),
        lambda: fast_sdk.sae().stop_application(sae_models.StopApplicationRequest(app_id=app_id)),
        lambda: fast_sdk.sae().delete_application(
            sae_models.DeleteApplicationRequest(app_id=app_id)
        ),
    ):
        with pytest.raises(ClientException) as busy:
            attempt()
        assert (busy.value.code, busy.value.status_code) == ("Application.ChangerOrderRunning", 400)
    assert wait_for(fast_sdk, created).status == 2


def test_abort_and_abort_with_rollback(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role)
    wait_for(fast_sdk, created)
    sae = fast_sdk.sae()
    running = deploy(fast_sdk, app_id, image_url=IMAGE.replace(":1.1", ":1.0"))
    sae.abort_change_order(sae_models.AbortChangeOrderRequest(change_order_id=running))
    assert describe(fast_sdk, running).status == 6
    with pytest.raises(ClientException) as finished:
        sae.abort_change_order(sae_models.AbortChangeOrderRequest(change_order_id=running))
    assert finished.value.code == "Application.ChangerOrder.Not.Running"

    again = deploy(fast_sdk, app_id, image_url=IMAGE.replace(":1.1", ":1.0"))
    aborted = sae.abort_and_rollback_change_order(
        sae_models.AbortAndRollbackChangeOrderRequest(change_order_id=again)
    ).body.data.change_order_id
    assert aborted == again  # the API reference's example: the aborted order's own id
    assert describe(fast_sdk, again).status == 6
    rollback = status(fast_sdk, app_id).last_change_order_id
    done = wait_for(fast_sdk, rollback)
    assert (done.status, done.co_type_code) == (2, "CoRollback")
    assert {i.image_url for i in instances(fast_sdk, app_id)} == {IMAGE}


def test_a_later_batch_failing_leaves_the_order_running_and_abnormal(
    fast_sdk: SdkFactory, fast_admin: SandboxAdmin, role: str
) -> None:
    """SubStatus 1: batch 2 of 2 failed, the order stays running (Status 1) until it is aborted
    and rolled back; meanwhile the app takes no other change. A failed first batch is Status 3."""
    app_id, created = create_app(fast_sdk, role, replicas=4)
    wait_for(fast_sdk, created)
    older = IMAGE.replace(":1.1", ":1.0")
    order_id = abnormal_release(fast_sdk, app_id, older)
    sae = fast_sdk.sae()
    time.sleep(0.3)  # it stays so
    abnormal = describe(fast_sdk, order_id)
    assert (abnormal.status, abnormal.sub_status) == (1, 1)
    assert [p.status for p in abnormal.pipelines] == [2, 3]
    assert "i/o timeout" in abnormal.error_message
    assert pull_reason(fast_admin, order_id) == "eip-not-whitelisted"
    app = status(fast_sdk, app_id)
    assert (app.last_change_order_status, app.last_change_order_running) == ("RUNNING", True)
    states = sorted((i.image_url, i.instance_container_status) for i in instances(fast_sdk, app_id))
    assert (
        states
        == [(older, "ErrImagePull")] * 2 + [(older, "Running")] * 2 + [(IMAGE, "Running")] * 2
    )
    versions = sae.list_app_versions(sae_models.ListAppVersionsRequest(app_id=app_id)).body.data
    for attempt in (
        lambda: deploy(fast_sdk, app_id, replicas=4),
        lambda: sae.rollback_application(
            sae_models.RollbackApplicationRequest(app_id=app_id, version_id=versions[1].id)
        ),
    ):
        with pytest.raises(ClientException) as busy:
            attempt()
        assert busy.value.code == "Application.ChangerOrderRunning"

    whitelist(fast_sdk)
    sae.abort_and_rollback_change_order(
        sae_models.AbortAndRollbackChangeOrderRequest(change_order_id=order_id)
    )
    assert describe(fast_sdk, order_id).status == 6
    rollback = wait_for(fast_sdk, status(fast_sdk, app_id).last_change_order_id)
    assert (rollback.status, rollback.co_type_code) == (2, "CoRollback")
    assert {(i.image_url, i.instance_container_status) for i in instances(fast_sdk, app_id)} == {
        (IMAGE, "Running")
    }

    unwhitelist(fast_sdk)
    strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": "manual"}}
    first = wait_for(
        fast_sdk, deploy(fast_sdk, app_id, image_url=older, update_strategy=json.dumps(strategy))
    )
    assert (first.status, first.sub_status, [p.status for p in first.pipelines]) == (3, 0, [3, 6])


def test_manual_batches_wait_for_confirmation(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role, replicas=4)
    wait_for(fast_sdk, created)
    strategy = {"type": "BatchUpdate", "batchUpdate": {"batch": 2, "releaseType": "manual"}}
    order_id = deploy(
        fast_sdk,
        app_id,
        image_url=IMAGE.replace(":1.1", ":1.0"),
        update_strategy=json.dumps(strategy),
    )
    waiting = wait_for(fast_sdk, order_id, until={8, 2, 3})
    assert waiting.status == 8
    assert [p.status for p in waiting.pipelines] == [2, 0]
    images = sorted(i.image_url for i in instances(fast_sdk, app_id))
    assert images == [IMAGE.replace(":1.1", ":1.0")] * 2 + [IMAGE] * 2
    time.sleep(0.3)
    assert describe(fast_sdk, order_id).status == 8
    fast_sdk.sae().confirm_pipeline_batch(
        sae_models.ConfirmPipelineBatchRequest(
            pipeline_id=waiting.pipelines[1].pipeline_id, confirm=True
        )
    )
    assert wait_for(fast_sdk, order_id).status == 2
    assert {i.image_url for i in instances(fast_sdk, app_id)} == {IMAGE.replace(":1.1", ":1.0")}


def test_auto_batches_pause_between_batches(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role, replicas=2)
    wait_for(fast_sdk, created)
    strategy = {
        "type": "BatchUpdate",
        "batchUpdate": {"batch": 2, "releaseType": "auto", "batchWaitTime": 1},
    }
    order_id = deploy(
        fast_sdk,
        app_id,
        image_url=IMAGE.replace(":1.1", ":1.0"),
        update_strategy=json.dumps(strategy),
    )
    assert wait_for(fast_sdk, order_id, until={9, 2, 3}).status == 9
    assert wait_for(fast_sdk, order_id).status == 2


def test_stop_start_delete(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role)
    wait_for(fast_sdk, created)
    sae = fast_sdk.sae()
    stop = sae.stop_application(sae_models.StopApplicationRequest(app_id=app_id)).body.data
    assert wait_for(fast_sdk, stop.change_order_id).status == 2
    assert (status(fast_sdk, app_id).current_status, instances(fast_sdk, app_id)) == ("STOPPED", [])
    with pytest.raises(ClientException) as stopped:
        sae.stop_application(sae_models.StopApplicationRequest(app_id=app_id))
    assert stopped.value.code == "Application.InvalidStatus"
    start = sae.start_application(sae_models.StartApplicationRequest(app_id=app_id)).body.data
    assert wait_for(fast_sdk, start.change_order_id).status == 2
    assert status(fast_sdk, app_id).running_instances == 2
    delete = sae.delete_application(sae_models.DeleteApplicationRequest(app_id=app_id)).body.data
    assert wait_for(fast_sdk, delete.change_order_id).status == 2
    with pytest.raises(ClientException) as gone:
        sae.describe_application_config(sae_models.DescribeApplicationConfigRequest(app_id=app_id))
    assert (gone.value.code, gone.value.status_code) == ("InvalidAppId.NotFound", 404)
    with pytest.raises(ClientException) as gone_deploy:
        deploy(fast_sdk, app_id)
    assert (gone_deploy.value.code, gone_deploy.value.status_code) == (
        "InvalidApplication.NotFound",
        400,
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"app_name": "Shop_Web"}, "InvalidParameter.WithMessage"),
        ({"app_name": "shop-"}, "InvalidParameter.WithMessage"),
        ({"app_name": "a" * 37}, "InvalidParameter.WithMessage"),
        ({"cpu": 500, "memory": 8192}, "InvalidInstanceSpecification.Unsupported"),
        ({"cpu": 3000}, "InvalidInstanceSpecification.Unsupported"),
        ({"namespace_id": "cn-hangzhou:nowhere"}, "InvalidNamespaceId.NotFound"),
        ({"namespace_id": "cn-hangzhou:Demo"}, "InvalidNamespace.WithUppercase"),
        ({"vpc_id": "vpc-reg"}, "InvalidVpcId.NotFound"),
        ({"v_switch_id": "vsw-reg-h"}, "vswitch.not.exist"),
        ({"image_url": None}, "InvalidParameter.NotEmpty"),
        ({"package_type": "Zip"}, "InvalidPackageType.NotFound"),
        ({"envs": "{not json"}, "InvalidParameter.WithMessage"),
        ({"envs": '[{"value": "no name"}]'}, "InvalidParameter.WithMessage"),
        ({"command_args": '["ok", 1]'}, "InvalidParameter.WithMessage"),
        ({"replicas": 51}, "NoComputeResourceQuota.App.Exceed"),
        ({"image_pull_secrets": "abc"}, "InvalidParameter.WithMessage"),
        ({"termination_grace_period_seconds": 6001}, "InvalidParameter"),
        ({"termination_grace_period_seconds": -1}, "InvalidParameter"),
        ({"memory": None}, "InvalidInstanceSpecification.Unsupported"),
    ],
)
@pytest.mark.contract_breaches
def test_create_input_errors_start_nothing(
    fast_sdk: SdkFactory, fast_admin: SandboxAdmin, overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientException) as refused:
        create_app(fast_sdk, "acs:ram::2222222222222222:role/sae-pull", **overrides)
    assert refused.value.code == code
    state = fast_admin.state()["app"].get("cn-hangzhou", {})
    assert "sae_app" not in state and "sae_change_order" not in state


def test_create_needs_only_what_the_contract_requires(fast_sdk: SdkFactory, role: str) -> None:
    """Cpu, Memory and NamespaceId are optional in the metadata (the default namespace, named by
    its first app's VPC); a grace period anywhere in the metadata's 0..6000 is taken."""
    app_id, change_order_id = create_app(
        fast_sdk,
        role,
        cpu=None,
        memory=None,
        namespace_id=None,
        vpc_id="vpc-app",
        v_switch_id="vsw-app-h",
        termination_grace_period_seconds=6000,
    )
    assert wait_for(fast_sdk, change_order_id).status == 2
    config = (
        fast_sdk.sae()
        .describe_application_config(sae_models.DescribeApplicationConfigRequest(app_id=app_id))
        .body.data
    )
    assert (config.namespace_id, config.termination_grace_period_seconds) == ("cn-hangzhou", 6000)
    assert (config.cpu, config.memory) == (None, None)


def test_duplicate_name_and_other_accounts(fast_sdk: SdkFactory, role: str) -> None:
    app_id, created = create_app(fast_sdk, role)
    with pytest.raises(ClientException) as duplicate:
        create_app(fast_sdk, role)
    assert duplicate.value.code == "Application.AlreadyExists"
    registry = fast_sdk.sae("registry")
    with pytest.raises(ClientException) as hidden:
        registry.describe_application_status(
            sae_models.DescribeApplicationStatusRequest(app_id=app_id)
        )
    assert hidden.value.code == "InvalidAppId.NotFound"
    with pytest.raises(ClientException) as foreign_order:
        registry.describe_change_order(
            sae_models.DescribeChangeOrderRequest(change_order_id=created)
        )
    assert foreign_order.value.code == "InvalidChangeOrder.NotFound"
    assert (
        registry.list_applications(sae_models.ListApplicationsRequest()).body.data.applications
        == []
    )


def test_namespace_resources_count_apps(fast_sdk: SdkFactory, role: str) -> None:
    _, created = create_app(fast_sdk, role)
    data = (
        fast_sdk.sae()
        .describe_namespace_resources(
            sae_models.DescribeNamespaceResourcesRequest(namespace_id="cn-hangzhou:demo")
        )
        .body.data
    )
    assert (data.app_count, data.vpc_id, data.last_change_order_id) == (1, "vpc-app", created)
