"""What the SAE engine moves: change orders (with their batches, stages and tasks) and the
application's instances and versions they change.

The handlers start change orders here (`start_change_order`); `engine.py` advances them in the
background and calls the `on_*` hooks when a task changes the application. One change order runs
per application at a time (`Application.ChangerOrderRunning`, `require_idle`).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
import uuid
from collections.abc import Mapping

from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.documents import (
    ABORTED,
    ACTIVE,
    ACTIVE_INDEX,
    APP,
    CHANGE_ORDER,
    CO_TYPES,
    PREPARING,
    RUNNING,
    ActiveRef,
    App,
    ChangeOrder,
    Config,
    Instance,
    Namespace,
    Pipeline,
    as_app,
    as_change_order,
    ms,
)
from sandbox.services.sae.namespaces import find_namespace, regions
from sandbox.services.sae.rules import rollout
from sandbox.store import GLOBAL, Scope, Tx

# -- change orders -------------------------------------------------------------------------------

# Stages of one batch, as (stage name, [(task name, task kind)]). The task kind is what the
# engine does when the task completes; "pull" is where the image-pull judgment happens.
_ROLLOUT = (
    ("Prepare", (("Check configuration", "noop"), ("Schedule instances", "noop"))),
    ("Deploy", (("Pull image", "pull"), ("Start containers", "start"), ("Health check", "noop"))),
    ("Traffic", (("Switch traffic", "noop"),)),
)
_STOP = (("Stop", (("Stop instances", "stop"),)),)
_DELETE = (("Delete", (("Stop instances", "stop"), ("Release application", "delete"))),)
_CONFIG_ONLY = (("Update", (("Save configuration", "noop"),)),)

STAGES = {
    "CoCreateApp": _ROLLOUT,
    "CoDeploy": _ROLLOUT,
    "CoRollback": _ROLLOUT,
    "CoStartApplication": _ROLLOUT,
    "CoStopApplication": _STOP,
    "CoDeleteApp": _DELETE,
    "CoConfigOnly": _CONFIG_ONLY,
}


def clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def split_batches(replicas: int, batches: int) -> list[int]:
    """Instances per batch, as even as possible, earlier batches larger."""
    batches = max(1, min(batches, max(replicas, 1)))
    base, extra = divmod(replicas, batches)
    return [base + (1 if i < extra else 0) for i in range(batches)]


def new_change_order(
    tx: Tx,
    scope: Scope,
    *,
    app: App,
    co_type: str,
    target: Config,
    batches: list[int],
    release: str,
    batch_wait_s: float,
    total_seconds: float,
    now: float,
    description: str = "",
) -> ChangeOrder:
    """Create, store and index a change order that the engine will run."""
    stages = STAGES[co_type]
    tasks_per_batch = sum(len(tasks) for _, tasks in stages)
    task_seconds = total_seconds / max(1, tasks_per_batch * len(batches))
    code = "CoDeploy" if co_type == "CoConfigOnly" else co_type
    pipelines: list[Pipeline] = []
    for index, size in enumerate(batches, start=1):
        pipeline_id = str(uuid.uuid4())
        pipelines.append(
            {
                "PipelineId": pipeline_id,
                "PipelineName": f"Batch {index} Change",
                "Status": PREPARING,
                "StartTime": 0,
                "UpdateTime": ms(now),
                "BatchType": 0 if release == "auto" else 1,
                "ParallelCount": size,
                "instances": size,
                "stages": [
                    {
                        "StageId": str(uuid.uuid4()),
                        "StageName": stage_name,
                        "Status": PREPARING,
                        "ExecutorType": 0,
                        "tasks": [
                            {
                                "TaskId": str(uuid.uuid4()),
                                "TaskName": task_name,
                                "kind": kind,
                                "Status": PREPARING,
                                "Message": "",
                                "ErrorCode": "",
                                "ErrorMessage": "",
                                "seconds": task_seconds,
                                "started_at": None,
                            }
                            for task_name, kind in tasks
                        ],
                    }
                    for stage_name, tasks in stages
                ],
            }
        )
    order: ChangeOrder = {
        "ChangeOrderId": str(uuid.uuid4()),
        "AppId": app["AppId"],
        "AppName": app["AppName"],
        "CoTypeCode": code,
        "CoType": CO_TYPES.get(code, code),
        "Description": description,
        "CreateTime": clock(now),
        "created_at": now,
        "cursor": now,
        "FinishTime": "",
        "Status": PREPARING,
        "SubStatus": 0,
        "ErrorMessage": "",
        "BatchType": release,
        "BatchWaitTime": batch_wait_s,
        "current": 0,
        "wait_until": None,
        "pipelines": pipelines,
        "target": target,
        "kind": co_type,
        "pull": None,
        "version": None,
    }
    tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    ref: ActiveRef = {
        "id": order["ChangeOrderId"],
        "account": scope.account,
        "region": scope.region,
    }
    tx.put(Scope("", GLOBAL), ACTIVE_INDEX, order["ChangeOrderId"], ref)
    return order


def is_active(order: ChangeOrder) -> bool:
    return int(order["Status"]) in ACTIVE


def find_change_order(
    tx: Tx, account: str, change_order_id: str, regions: list[str]
) -> tuple[Scope, ChangeOrder] | None:
    for region in regions:
        doc = tx.get(Scope(account, region), CHANGE_ORDER, change_order_id)
        if doc is not None:
            return Scope(account, region), as_change_order(doc)
    return None


def require_active(order: ChangeOrder) -> None:
    """AbortChangeOrder and AbortAndRollbackChangeOrder document this code for an order that no
    longer runs (https://www.alibabacloud.com/help/zh/sae/developer-reference/api-abortchangeorder,
    https://help.aliyun.com/zh/sae/developer-reference/api-sae-2019-05-06-abortandrollbackchangeorder).
    An abnormal order (SubStatus 1) still runs, so it can be aborted and rolled back."""
    if not is_active(order):
        raise ApiError(
            400,
            "Application.ChangerOrder.Not.Running",
            "The change order is not running and cannot be terminated.",
        )


def abort(tx: Tx, scope: Scope, order: ChangeOrder, now: float) -> None:
    """Stop a running change order where it stands (status 6)."""
    order["Status"] = ABORTED
    order["FinishTime"] = clock(now)
    order["ErrorMessage"] = "The change order was aborted."
    for pipeline in order["pipelines"]:
        if pipeline["Status"] in (PREPARING, RUNNING):
            pipeline["Status"] = ABORTED
            pipeline["UpdateTime"] = ms(now)
            for stage in pipeline["stages"]:
                if stage["Status"] in (PREPARING, RUNNING):
                    stage["Status"] = ABORTED
                for task in stage["tasks"]:
                    if task["Status"] in (PREPARING, RUNNING):
                        task["Status"] = ABORTED
    tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    tx.delete(Scope("", GLOBAL), ACTIVE_INDEX, order["ChangeOrderId"])


# -- lookups ---------------------------------------------------------------------------------------


def find_app(tx: Tx, scope: Scope, app_id: str) -> App | None:
    found = tx.get(scope, APP, app_id)
    return None if found is None else as_app(found)


def app_or_404(call: Call, *, not_found: str = "InvalidApplication.NotFound") -> tuple[Scope, App]:
    """The caller's application named by `AppId`: 404 `InvalidAppId.NotFound` for reads,
    400 `InvalidApplication.NotFound` for changes (reference 2.9)."""
    app_id = call.params.text("AppId")
    for region in regions(call):
        app = find_app(call.tx, call.scope(region), app_id)
        if app is not None:
            return call.scope(region), app
    if not_found == "InvalidAppId.NotFound":
        raise ApiError(404, not_found, "The specified AppId does not exist.")
    raise ApiError(400, not_found, "The current application does not exist.")


def namespace_of(tx: Tx, scope: Scope, app: App) -> Namespace | None:
    return find_namespace(tx, scope.account, app["NamespaceId"])


def _running_order(tx: Tx, scope: Scope, app: App) -> ChangeOrder | None:
    last = app["last_change_order_id"]
    if not last:
        return None
    found = find_change_order(tx, scope.account, last, [scope.region])
    return found[1] if found and is_active(found[1]) else None


def require_idle(tx: Tx, scope: Scope, app: App) -> None:
    if _running_order(tx, scope, app) is not None:
        raise ApiError(
            400,
            "Application.ChangerOrderRunning",
            "An application change process is in progress. Please try again later.",
        )


# -- instances -------------------------------------------------------------------------------------


def _new_instances(
    tx: Tx, scope: Scope, app: App, image: str, count: int, status: str, at: float
) -> list[Instance]:
    vswitch = tx.get(scope, "vswitch", app["config"].get("VSwitchId", ""))
    network = ipaddress.IPv4Network(vswitch["CidrBlock"]) if vswitch else None
    made: list[Instance] = []
    for _ in range(count):
        app["instance_seq"] = app.get("instance_seq", 0) + 1
        address = str(network.network_address + 10 + app["instance_seq"]) if network else ""
        made.append(
            {
                "InstanceId": f"{app['AppName']}-{secrets.token_hex(5)}-{secrets.token_hex(3)[:5]}",
                "ImageUrl": image,
                "status": status,
                "since": at,
                "InstanceContainerIp": address,
                "VSwitchId": app["config"].get("VSwitchId", ""),
                "PackageVersion": app["config"].get("PackageVersion", ""),
            }
        )
    return made


def save_app(tx: Tx, scope: Scope, app: App) -> None:
    tx.put(scope, APP, app["AppId"], app)


def on_pull_failed(tx: Tx, scope: Scope, order: ChangeOrder, batch: int, at: float) -> None:
    """New instances of the failed batch cannot pull; the old ones keep serving."""
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    running = [i for i in app["instances"] if i["status"] == "Running"]
    size = int(order["pipelines"][batch]["instances"])
    image = order["target"].get("ImageUrl", "")
    app["instances"] = running + _new_instances(tx, scope, app, image, size, "ErrImagePull", at)
    save_app(tx, scope, app)


def on_batch_started(tx: Tx, scope: Scope, order: ChangeOrder, batch: int, at: float) -> None:
    """This batch's instances now run the target image, replacing as many old ones."""
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    size = int(order["pipelines"][batch]["instances"])
    image = order["target"].get("ImageUrl", "")
    fresh = [i for i in app["instances"] if i.get("order") == order["ChangeOrderId"]]
    old = [
        i
        for i in app["instances"]
        if i.get("order") != order["ChangeOrderId"] and i["status"] == "Running"
    ]
    started = _new_instances(tx, scope, app, image, size, "Running", at)
    for instance in started:
        instance["order"] = order["ChangeOrderId"]
    app["instances"] = old[size:] + fresh + started
    app["stopped"] = False
    save_app(tx, scope, app)


def on_change_order_succeeded(tx: Tx, scope: Scope, order: ChangeOrder, now: float) -> None:
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    if order["kind"] in ("CoCreateApp", "CoDeploy", "CoRollback", "CoStartApplication"):
        target = order["target"]
        replicas = int(target.get("Replicas", "0"))
        keep = [i for i in app["instances"] if i.get("order") == order["ChangeOrderId"]][:replicas]
        missing = replicas - len(keep)
        app["instances"] = keep + _new_instances(
            tx, scope, app, target.get("ImageUrl", ""), missing, "Running", now
        )
        app["stopped"] = False
        if order["version"]:
            app["running_version"] = order["version"]
    save_app(tx, scope, app)


def on_stopped(tx: Tx, scope: Scope, order: ChangeOrder, at: float) -> None:
    app = find_app(tx, scope, order["AppId"])
    if app is not None:
        app["instances"] = []
        app["stopped"] = order["kind"] == "CoStopApplication"
        save_app(tx, scope, app)


def on_deleted(tx: Tx, scope: Scope, order: ChangeOrder) -> None:
    tx.delete(scope, APP, order["AppId"])


# -- change-order starters -------------------------------------------------------------------------


def start_change_order(
    call: Call,
    scope: Scope,
    app: App,
    co_type: str,
    target: Config,
    description: str = "",
    *,
    version: str | None = None,
) -> ChangeOrder:
    """Start a change order towards `target`; a create or deploy records a new version, a
    rollback names the `version` it returns to."""
    replicas = int(target.get("Replicas", "0") or 0)
    if co_type in ("CoDeploy", "CoRollback"):
        count, release, wait = rollout(target)
        batches = split_batches(replicas, count)
    else:
        release, wait = "auto", 0.0
        batches = [replicas]
    order = new_change_order(
        call.tx,
        scope,
        app=app,
        co_type=co_type,
        target=target,
        batches=batches,
        release=release,
        batch_wait_s=wait * call.world.timing.minute_seconds / 60.0,
        total_seconds=call.world.timing.change_order_seconds,
        now=call.now,
        description=description,
    )
    if version is None and co_type in ("CoCreateApp", "CoDeploy"):
        version = _new_version(app, target, call.now)
    order["version"] = version
    call.tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    app["last_change_order_id"] = order["ChangeOrderId"]
    save_app(call.tx, scope, app)
    return order


def _new_version(app: App, config: Mapping[str, str], now: float) -> str:
    """Record the version a release starts, before it is known whether it will run.

    ListAppVersions ("Lists the historical versions of an application",
    https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-listappversions) has no status
    field in its documented response (Id, Type, CreateTime, BuildPackageUrl, WarUrl), and the
    docs do not say whether a failed deploy is listed: the stricter reading lists it, so a
    rollback target must be chosen, not taken as the newest entry.
    """
    app["version_seq"] = app.get("version_seq", 0) + 1
    version_id = f"{app['AppId'][:8]}-v{app['version_seq']}"
    app["versions"].append({"Id": version_id, "CreateTime": str(ms(now)), "config": dict(config)})
    return version_id


def roll_back_to_running_version(call: Call, scope: Scope, app_id: str) -> ChangeOrder | None:
    """Start a rollback to the version the app last ran (before the order being rolled back);
    None when it never ran one."""
    app = find_app(call.tx, scope, app_id)
    running = app.get("running_version") if app is not None else None
    version = next((v for v in app["versions"] if v["Id"] == running), None) if app else None
    if app is None or version is None:
        return None
    target = dict(version["config"])
    app["config"] = target
    return start_change_order(call, scope, app, "CoRollback", target, version=version["Id"])
