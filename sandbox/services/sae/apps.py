"""SAE applications: the API handlers that create, deploy, roll back, stop, start and delete
them, and the views that describe them.

Every mutating call validates synchronously (`rules`, the documented 4xx codes) and then starts a
change order (`lifecycle`); the engine carries it out in the background and changes the
application's instances through the `lifecycle.on_*` hooks.

The application document (kind `sae_app`, `documents.App`, scope = account and region) keeps the
configuration as sent on the wire (`config`, by parameter name), the instances, the versions
recorded by every create or deploy that starts a release (listed whether it ran or not), which
RollbackApplication returns to, and the version the app last ran (`running_version`).

Codes the documentation does not give, chosen by the sandbox: a second application with the same
name in a namespace gets 400 `Application.AlreadyExists`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from crossdeploy.sae_facts import valid_app_name
from sandbox import chosen_codes
from sandbox.call import Call
from sandbox.services.sae.documents import (
    APP,
    CHANGE_ORDER,
    STATUS_NAMES,
    App,
    Instance,
    Namespace,
    as_app,
    as_change_order,
    ms,
)
from sandbox.services.sae.lifecycle import (
    app_or_404,
    find_change_order,
    is_active,
    namespace_of,
    require_idle,
    save_app,
    start_change_order,
)
from sandbox.services.sae.namespaces import namespace_or_404, regions
from sandbox.services.sae.rules import (
    BOOL_FIELDS,
    CREATE_PARAMS,
    DEPLOY_PARAMS,
    HIDDEN,
    INT_FIELDS,
    LIST_FIELDS,
    bind_default,
    check_config,
    check_network,
    collect,
    invalid,
    invalid_status,
    namespace_for,
    without_unset,
)
from sandbox.store import Doc, Scope, Tx

PULL_BACKOFF_SECONDS = 10.0
"""After this long, a failed pull shows as ImagePullBackOff rather than ErrImagePull."""


# -- handlers --------------------------------------------------------------------------------------


def create_application(call: Call) -> dict[str, Any]:
    name = call.params.text("AppName")
    if not valid_app_name(name):
        raise invalid(
            "AppName",
            "use 1-36 letters, digits or hyphens, starting with a letter and not ending with "
            "a hyphen",
        )
    namespace = namespace_for(call)
    config = without_unset(collect(call, CREATE_PARAMS))
    config["NamespaceId"] = namespace["NamespaceId"]
    check_config(config)
    if not namespace["VpcId"]:
        bind_default(call, namespace, config)
    check_network(call, namespace, config)
    scope = Scope(call.caller.account, namespace["RegionId"])
    if any(
        a["AppName"] == name and a["NamespaceId"] == namespace["NamespaceId"]
        for a in call.tx.all(scope, APP)
    ):
        raise chosen_codes.APPLICATION_ALREADY_EXISTS.error(
            f"An application named {name} already exists in {namespace['NamespaceId']}."
        )
    app: App = {
        "AppId": str(uuid.uuid4()),
        "AppName": name,
        "NamespaceId": namespace["NamespaceId"],
        "RegionId": namespace["RegionId"],
        "CreateTime": ms(call.now),
        "config": config,
        "instances": [],
        "versions": [],
        "stopped": True,
        "deleting": False,
        "last_change_order_id": "",
    }
    save_app(call.tx, scope, app)
    change_order_id = ""
    if call.params.flag("Deploy", default=True):
        order = start_change_order(call, scope, app, "CoCreateApp", dict(config))
        change_order_id = order["ChangeOrderId"]
    return {"Data": {"AppId": app["AppId"], "ChangeOrderId": change_order_id}}


def deploy_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    if app["deleting"]:
        raise invalid_status()
    require_idle(call.tx, scope, app)
    # A parameter given replaces the app's value whole; one not given keeps it. DeployApplication
    # (https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-deployapplication) documents
    # SidecarContainersConfig / InitContainersConfig as the containers' configuration, and is
    # silent on an empty list: the stricter reading is that `[]` sets "none" and so removes the
    # sidecars or init containers set in the console. The official SDK sends such a list only
    # when the request model's field is not None (`deploy_application_with_options`).
    config = without_unset({**app["config"], **collect(call, DEPLOY_PARAMS)})
    check_config(config)
    namespace = namespace_of(call.tx, scope, app)
    assert namespace is not None
    check_network(call, namespace, config)
    app["config"] = config
    description = call.params.text("ChangeOrderDesc")
    if app["stopped"] and not call.params.flag("Deploy"):
        order = start_change_order(call, scope, app, "CoConfigOnly", dict(config), description)
    elif app["stopped"]:
        order = start_change_order(
            call, scope, app, "CoStartApplication", dict(config), description
        )
    else:
        order = start_change_order(call, scope, app, "CoDeploy", dict(config), description)
    return {
        "Data": {
            "AppId": app["AppId"],
            "ChangeOrderId": order["ChangeOrderId"],
            "IsNeedApproval": False,
        }
    }


def rollback_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    version_id = call.params.text("VersionId")
    version = next((v for v in app["versions"] if v["Id"] == version_id), None)
    if version is None:
        raise invalid("VersionId", f"{version_id} is not a version of this application")
    require_idle(call.tx, scope, app)
    target = dict(version["config"])
    overrides = {
        k: call.params.text(k)
        for k in ("MinReadyInstances", "UpdateStrategy", "BatchWaitTime")
        if call.params.text(k)
    }
    target.update(overrides)
    check_config(target)
    app["config"] = target
    order = start_change_order(call, scope, app, "CoRollback", target, version=version["Id"])
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"], "IsNeedApproval": False}}


def stop_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    require_idle(call.tx, scope, app)
    if app["stopped"]:
        raise invalid_status()
    order = start_change_order(call, scope, app, "CoStopApplication", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def start_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    require_idle(call.tx, scope, app)
    if not app["stopped"]:
        raise invalid_status()
    order = start_change_order(call, scope, app, "CoStartApplication", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def delete_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    require_idle(call.tx, scope, app)
    app["deleting"] = True
    order = start_change_order(call, scope, app, "CoDeleteApp", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


# -- views -----------------------------------------------------------------------------------------


def _typed(name: str, value: str) -> Any:
    if name in INT_FIELDS:
        return int(value)
    if name in BOOL_FIELDS:
        return value.lower() == "true"
    if name in LIST_FIELDS:
        return json.loads(value)
    return value


def config_view(app: App, config: Mapping[str, str]) -> Doc:
    """DescribeApplicationConfig's Data: every stored parameter, typed as the SDK model says."""
    data: Doc = {k: _typed(k, v) for k, v in config.items() if k not in HIDDEN and k != "Labels"}
    if "Labels" in config:
        labels = json.loads(config["Labels"])
        if isinstance(labels, dict):
            data["Labels"] = {k: str(v) for k, v in labels.items()}
            data["Tags"] = [{"Key": k, "Value": str(v)} for k, v in labels.items()]
    data.update(
        AppId=app["AppId"],
        AppName=app["AppName"],
        RegionId=app["RegionId"],
        NamespaceId=app["NamespaceId"],
    )
    return data


def describe_application_config(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    version_id = call.params.text("VersionId")
    config = app["config"]
    if version_id:
        version = next((v for v in app["versions"] if v["Id"] == version_id), None)
        if version is None:
            raise invalid("VersionId", f"{version_id} is not a version of this application")
        config = version["config"]
    return {"Data": config_view(app, config)}


def _container_status(instance: Instance, now: float) -> str:
    if (
        instance["status"] == "ErrImagePull"
        and now - float(instance["since"]) > PULL_BACKOFF_SECONDS
    ):
        return "ImagePullBackOff"
    return str(instance["status"])


def _running(app: App) -> int:
    return sum(1 for i in app["instances"] if i["status"] == "Running")


def describe_application_status(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    last = app.get("last_change_order_id") or ""
    found = find_change_order(call.tx, scope.account, last, [scope.region]) if last else None
    order = found[1] if found else None
    broken = any(i["status"] != "Running" for i in app["instances"])
    if app["stopped"]:
        current = "STOPPED"
    elif app["instances"]:
        current = "RUNNING"
    else:
        current = "UNKNOWN"
    return {
        "Data": {
            "AppId": app["AppId"],
            "CurrentStatus": current,
            "SubStatus": "RUNNING_BUT_HAS_ERROR" if broken and _running(app) else "NORMAL",
            "RunningInstances": _running(app),
            "LastChangeOrderId": last,
            "LastChangeOrderStatus": STATUS_NAMES.get(int(order["Status"]), "") if order else "",
            "LastChangeOrderRunning": bool(order and is_active(order)),
            "CreateTime": str(app["CreateTime"]),
            "ArmsAdvancedEnabled": "false",
            "EnableAgent": False,
            "FileSizeLimit": 0,
        }
    }


def _group_id(app: App) -> str:
    return f"{app['AppId']}-default"


def describe_application_groups(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    config = app["config"]
    group = {
        "GroupId": _group_id(app),
        "GroupName": "_DEFAULT_GROUP",
        "GroupType": 0,
        "Replicas": int(config.get("Replicas", "0")),
        "RunningInstances": _running(app),
        "ImageUrl": config.get("ImageUrl", ""),
        "PackageType": config.get("PackageType", ""),
        "PackageVersion": config.get("PackageVersion", ""),
    }
    return {"Data": [group]}


def describe_application_instances(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    group_id = call.params.text("GroupId")
    if group_id != _group_id(app):
        raise invalid("GroupId", f"{group_id} is not a group of this application")
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=1, maximum=10000)
    wanted = call.params.text("InstanceId")
    pipeline_id = call.params.text("PipelineId")
    instances = [i for i in app["instances"] if not wanted or i["InstanceId"] == wanted]
    if pipeline_id:
        orders = {
            o["ChangeOrderId"]: o
            for o in map(as_change_order, call.tx.all(scope, CHANGE_ORDER))
            if o["AppId"] == app["AppId"]
        }
        instances = [
            i
            for i in instances
            if (order := orders.get(i.get("order", ""))) is not None
            and any(p["PipelineId"] == pipeline_id for p in order["pipelines"])
        ]
    if call.params.flag("Reverse"):
        instances = list(reversed(instances))
    chunk = instances[(page - 1) * size : page * size]
    items = []
    for instance in chunk:
        status = _container_status(instance, call.now)
        items.append(
            {
                "InstanceId": instance["InstanceId"],
                "GroupId": _group_id(app),
                "ImageUrl": instance["ImageUrl"],
                "InstanceContainerStatus": status,
                "MainContainerStatus": status,
                "InstanceHealthStatus": "WithoutHealthCheckConfig"
                if status == "Running"
                else "Unhealthy",
                "InstanceContainerRestarts": 0,
                "InstanceContainerIp": instance["InstanceContainerIp"],
                "VSwitchId": instance["VSwitchId"],
                "CreateTimeStamp": ms(float(instance["since"])),
                "Timestamp": ms(float(instance["since"])),
                "PackageVersion": instance["PackageVersion"],
                "UnhealthyMessage": ""
                if status == "Running"
                else f'Back-off pulling image "{instance["ImageUrl"]}"',
                "TrafficStatus": "",
                "DebugStatus": False,
            }
        )
    return {
        "Data": {
            "Instances": items,
            "CurrentPage": page,
            "PageSize": size,
            "TotalSize": len(instances),
        }
    }


def list_app_versions(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    versions = [
        {
            "Id": v["Id"],
            "Type": "image",
            "CreateTime": v["CreateTime"],
            "BuildPackageUrl": v["config"].get("ImageUrl", ""),
            "WarUrl": "",
        }
        for v in reversed(app["versions"])
    ]
    return {"Data": versions}


def list_applications(call: Call) -> dict[str, Any]:
    """AppName matches as a substring, as the console's search does: filter for the exact name."""
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=0, maximum=10000)
    name = call.params.text("AppName")
    namespace_id = call.params.text("NamespaceId")
    field, value = call.params.text("FieldType"), call.params.text("FieldValue")
    apps = [as_app(a) for region in regions(call) for a in call.tx.all(call.scope(region), APP)]
    if namespace_id:
        apps = [a for a in apps if a["NamespaceId"] == namespace_id]
    if name:
        apps = [a for a in apps if name in a["AppName"]]
    if field == "appName" and value:
        apps = [a for a in apps if value in a["AppName"]]
    elif field == "appIds" and value:
        ids = set(value.split(","))
        apps = [a for a in apps if a["AppId"] in ids]
    chunk = apps[(page - 1) * size : page * size] if size else []
    items = []
    for app in chunk:
        config = app["config"]
        items.append(
            {
                "AppId": app["AppId"],
                "AppName": app["AppName"],
                "AppDescription": config.get("AppDescription", ""),
                "NamespaceId": app["NamespaceId"],
                "NamespaceName": app["NamespaceId"].partition(":")[2] or app["NamespaceId"],
                "RegionId": app["RegionId"],
                "Cpu": int(config.get("Cpu", "0")),
                "Mem": int(config.get("Memory", "0")),
                "Instances": int(config.get("Replicas", "0")),
                "RunningInstances": _running(app),
                "ImageUrl": config.get("ImageUrl", ""),
                "PackageUrl": "",
                "VpcId": config.get("VpcId", ""),
                "AppDeletingStatus": bool(app["deleting"]),
                "Tags": [],
            }
        )
    paging = {"CurrentPage": page, "PageSize": size, "TotalSize": len(apps)}
    return {"Data": {"Applications": items, **paging}, **paging}


def apps_in_namespace(tx: Tx, account: str, namespace: Namespace) -> list[App]:
    return [
        a
        for a in map(as_app, tx.all(Scope(account, namespace["RegionId"]), APP))
        if a["NamespaceId"] == namespace["NamespaceId"]
    ]


def describe_namespace_resources(call: Call) -> dict[str, Any]:
    """DescribeNamespaceResources: a namespace's network plus its applications' activity."""
    namespace = namespace_or_404(call)
    scope = Scope(call.caller.account, namespace["RegionId"])
    apps = apps_in_namespace(call.tx, call.caller.account, namespace)
    orders = [
        o
        for o in map(as_change_order, call.tx.all(scope, CHANGE_ORDER))
        if o["AppId"] in {a["AppId"] for a in apps}
    ]
    last = orders[-1] if orders else None
    return {
        "Data": {
            "NamespaceId": namespace["NamespaceId"],
            "NamespaceName": namespace["NamespaceName"],
            "NameSpaceShortId": namespace["NameSpaceShortId"],
            "VpcId": namespace["VpcId"],
            "VSwitchId": namespace["VSwitchId"],
            "SecurityGroupId": namespace["SecurityGroupId"],
            "BelongRegion": namespace["RegionId"],
            "Description": namespace.get("NamespaceDescription", ""),
            "AppCount": len(apps),
            "LastChangeOrderId": last["ChangeOrderId"] if last else "",
            "LastChangeOrderRunning": bool(last and is_active(last)),
            "LastChangeOrderStatus": STATUS_NAMES.get(int(last["Status"]), "") if last else "",
            "TenantId": call.caller.account,
            "UserId": call.caller.account,
        }
    }
