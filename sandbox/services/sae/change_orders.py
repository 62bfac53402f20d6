"""SAE change orders: the documents, their status codes, and the API that reads and steers them.

A change order is one store document (kind `sae_change_order`) holding its pipelines (one per
batch), each with stages and tasks. `engine.py` moves it forward in the background; this module
builds new ones and answers DescribeChangeOrder, ListChangeOrders, DescribePipeline,
AbortChangeOrder, AbortAndRollbackChangeOrder and ConfirmPipelineBatch.

Status codes (reference 2.5): 0 preparing, 1 running, 2 success, 3 failed, 6 aborted,
8 waiting for batch confirmation, 9 automatic batch wait, 10 system failure. SubStatus 1
(abnormal): a batch after the first failed, and the order stays running until it is aborted or
rolled back (see `ABNORMAL`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.store import GLOBAL, Doc, Scope, Tx

CHANGE_ORDER = "sae_change_order"
ACTIVE_INDEX = "sae_active_change_order"
"""Global index of change orders the engine still has to move (id -> account, region)."""

PREPARING, RUNNING, SUCCESS, FAILED, ABORTED = 0, 1, 2, 3, 6
WAIT_CONFIRM, AUTO_WAIT, SYSTEM_FAIL = 8, 9, 10
ACTIVE = frozenset({PREPARING, RUNNING, WAIT_CONFIRM, AUTO_WAIT})
NORMAL, ABNORMAL = 0, 1
"""DescribeChangeOrder's SubStatus. "1: Abnormal. For example, if a batch release fails, you must
manually perform a rollback, leaving the release order in the In Progress state" (SDK model
DescribeChangeOrderResponseBodyData.sub_status; API reference
https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-describechangeorder). The docs give
a failed batch release as the example without saying which batch: the sandbox makes a failure in
any batch after the first abnormal (a batch is already released, so the app runs two versions
until someone rolls back), and a failure in the first batch a plain failure (Status 3)."""

STATUS_NAMES = {
    PREPARING: "READY",
    RUNNING: "RUNNING",
    SUCCESS: "SUCCESS",
    FAILED: "FAIL",
    ABORTED: "ABORT",
    WAIT_CONFIRM: "WAIT_BATCH_CONFIRM",
    AUTO_WAIT: "AUTO_BATCH_WAIT",
    SYSTEM_FAIL: "SYSTEM_FAIL",
}

CO_TYPES = {
    "CoCreateApp": "Create application",
    "CoDeploy": "Deploy application",
    "CoRollback": "Roll back application",
    "CoStopApplication": "Stop application",
    "CoStartApplication": "Start application",
    "CoDeleteApp": "Delete application",
}

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


def _ms(epoch: float) -> int:
    return int(epoch * 1000)


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
    app: Doc,
    co_type: str,
    target: Doc,
    batches: list[int],
    release: str,
    batch_wait_s: float,
    total_seconds: float,
    now: float,
    description: str = "",
) -> Doc:
    """Create, store and index a change order that the engine will run."""
    stages = STAGES[co_type]
    tasks_per_batch = sum(len(tasks) for _, tasks in stages)
    task_seconds = total_seconds / max(1, tasks_per_batch * len(batches))
    code = "CoDeploy" if co_type == "CoConfigOnly" else co_type
    pipelines = []
    for index, size in enumerate(batches, start=1):
        pipeline_id = str(uuid.uuid4())
        pipelines.append(
            {
                "PipelineId": pipeline_id,
                "PipelineName": f"Batch {index} Change",
                "Status": PREPARING,
                "StartTime": 0,
                "UpdateTime": _ms(now),
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
    order = {
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
    }
    tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    tx.put(
        Scope("", GLOBAL),
        ACTIVE_INDEX,
        order["ChangeOrderId"],
        {"id": order["ChangeOrderId"], "account": scope.account, "region": scope.region},
    )
    return order


def is_active(order: Doc) -> bool:
    return int(order["Status"]) in ACTIVE


def find_change_order(
    tx: Tx, account: str, change_order_id: str, regions: list[str]
) -> tuple[Scope, Doc] | None:
    for region in regions:
        doc = tx.get(Scope(account, region), CHANGE_ORDER, change_order_id)
        if doc is not None:
            return Scope(account, region), doc
    return None


def _regions(call: Call) -> list[str]:
    """Only the region the request addressed (sandbox/regions.py)."""
    return [call.region()]


def _order_or_404(call: Call) -> tuple[Scope, Doc]:
    change_order_id = call.params.text("ChangeOrderId")
    if not change_order_id:
        raise ApiError(
            400, "InvalidParameter.NotEmpty", "You must specify the parameter ChangeOrderId."
        )
    found = find_change_order(call.tx, call.caller.account, change_order_id, _regions(call))
    if found is None:
        raise ApiError(
            400, "InvalidChangeOrder.NotFound", "The current change order does not exist."
        )
    return found


def _pipeline_or_404(call: Call) -> tuple[Scope, Doc, int]:
    pipeline_id = call.params.text("PipelineId")
    if not pipeline_id:
        raise ApiError(
            400, "InvalidParameter.NotEmpty", "You must specify the parameter PipelineId."
        )
    for region in _regions(call):
        scope = call.scope(region)
        for order in call.tx.all(scope, CHANGE_ORDER):
            for index, pipeline in enumerate(order["pipelines"]):
                if pipeline["PipelineId"] == pipeline_id:
                    return scope, order, index
    raise ApiError(
        400,
        "InvalidParameter.Obviously",
        f"The specified parameter is invalid {{PipelineId: {pipeline_id}}}.",
    )


def _pipeline_summary(pipeline: Doc) -> Doc:
    keys = (
        "PipelineId",
        "PipelineName",
        "Status",
        "StartTime",
        "UpdateTime",
        "BatchType",
        "ParallelCount",
    )
    return {k: pipeline[k] for k in keys}


def current_pipeline_id(order: Doc) -> str:
    index = min(int(order["current"]), len(order["pipelines"]) - 1)
    return str(order["pipelines"][index]["PipelineId"])


def order_view(order: Doc) -> Doc:
    """DescribeChangeOrder's Data."""
    return {
        "ChangeOrderId": order["ChangeOrderId"],
        "AppId": order["AppId"],
        "AppName": order["AppName"],
        "CoType": order["CoType"],
        "CoTypeCode": order["CoTypeCode"],
        "CreateTime": order["CreateTime"],
        "Description": order["Description"],
        "Status": order["Status"],
        "SubStatus": order["SubStatus"],
        "ErrorMessage": order["ErrorMessage"],
        "BatchCount": len(order["pipelines"]),
        "BatchType": order["BatchType"],
        "BatchWaitTime": int(order["BatchWaitTime"] // 60),
        "Auto": order["BatchType"] == "auto",
        "CurrentPipelineId": current_pipeline_id(order),
        "Pipelines": [_pipeline_summary(p) for p in order["pipelines"]],
        "SupportRollback": order["CoTypeCode"] in ("CoDeploy", "CoRollback"),
        "ApprovalId": "",
    }


def describe_change_order(call: Call) -> dict[str, Any]:
    _, order = _order_or_404(call)
    return {"Data": order_view(order)}


def list_change_orders(call: Call) -> dict[str, Any]:
    from sandbox.services.sae.apps import app_or_404

    app_scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    status = call.params.text("CoStatus")
    co_type = call.params.text("CoType")
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=1, maximum=10000)
    orders = [o for o in call.tx.all(app_scope, CHANGE_ORDER) if o["AppId"] == app["AppId"]]
    if status:
        orders = [o for o in orders if str(o["Status"]) == status]
    if co_type:
        orders = [o for o in orders if o["CoTypeCode"] == co_type]
    orders.reverse()
    chunk = orders[(page - 1) * size : page * size]
    items = [
        {
            "ChangeOrderId": o["ChangeOrderId"],
            "AppId": o["AppId"],
            "CoType": o["CoType"],
            "CoTypeCode": o["CoTypeCode"],
            "CreateTime": o["CreateTime"],
            "FinishTime": o["FinishTime"],
            "Status": o["Status"],
            "BatchCount": len(o["pipelines"]),
            "BatchType": o["BatchType"],
            "Description": o["Description"],
            "GroupId": f"{o['AppId']}-default",
            "Source": "console",
            "CreateUserId": call.caller.account,
            "UserId": call.caller.account,
        }
        for o in chunk
    ]
    return {
        "Data": {
            "ChangeOrderList": items,
            "CurrentPage": page,
            "PageSize": size,
            "TotalSize": len(orders),
        }
    }


def describe_pipeline(call: Call) -> dict[str, Any]:
    _, order, index = _pipeline_or_404(call)
    pipeline = order["pipelines"][index]
    stages = []
    current_stage = ""
    for stage in pipeline["stages"]:
        if stage["Status"] == RUNNING or (
            not current_stage and stage["Status"] in (FAILED, ABORTED)
        ):
            current_stage = stage["StageId"]
        stages.append(
            {
                "StageId": stage["StageId"],
                "StageName": stage["StageName"],
                "Status": stage["Status"],
                "ExecutorType": stage["ExecutorType"],
                "TaskList": [
                    {
                        "TaskId": t["TaskId"],
                        "TaskName": t["TaskName"],
                        "StageId": stage["StageId"],
                        "Status": t["Status"],
                        "Message": t["Message"],
                        "ErrorCode": t["ErrorCode"],
                        "ErrorMessage": t["ErrorMessage"],
                        "ErrorIgnore": 0,
                        "ShowManualIgnore": False,
                    }
                    for t in stage["tasks"]
                ],
            }
        )
    following = (
        order["pipelines"][index + 1]["PipelineId"] if index + 1 < len(order["pipelines"]) else ""
    )
    return {
        "Data": {
            "PipelineId": pipeline["PipelineId"],
            "PipelineName": pipeline["PipelineName"],
            "PipelineStatus": pipeline["Status"],
            "CoStatus": STATUS_NAMES.get(int(order["Status"]), str(order["Status"])),
            "CurrentStageId": current_stage,
            "NextPipelineId": following,
            "ShowBatch": len(order["pipelines"]) > 1,
            "StageList": stages,
        }
    }


def _require_active(order: Doc) -> None:
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


def abort(tx: Tx, scope: Scope, order: Doc, now: float) -> None:
    """Stop a running change order where it stands (status 6)."""
    order["Status"] = ABORTED
    order["FinishTime"] = clock(now)
    order["ErrorMessage"] = "The change order was aborted."
    for pipeline in order["pipelines"]:
        if pipeline["Status"] in (PREPARING, RUNNING):
            pipeline["Status"] = ABORTED
            pipeline["UpdateTime"] = _ms(now)
            for stage in pipeline["stages"]:
                if stage["Status"] in (PREPARING, RUNNING):
                    stage["Status"] = ABORTED
                for task in stage["tasks"]:
                    if task["Status"] in (PREPARING, RUNNING):
                        task["Status"] = ABORTED
    tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    tx.delete(Scope("", GLOBAL), ACTIVE_INDEX, order["ChangeOrderId"])


def abort_change_order(call: Call) -> dict[str, Any]:
    scope, order = _order_or_404(call)
    rollback = call.params.flag("Rollback")
    _require_active(order)
    abort(call.tx, scope, order, call.now)
    if rollback:
        from sandbox.services.sae.apps import roll_back_to_running_version

        roll_back_to_running_version(call, scope, order["AppId"])
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def abort_and_rollback_change_order(call: Call) -> dict[str, Any]:
    """Abort the order and start a rollback to the version the app ran before it.

    Data.ChangeOrderId is the aborted order's own id, as in the API reference's example (request
    and response carry the same id,
    https://www.alibabacloud.com/help/en/sae/latest/abortandrollbackchangeorder); the rollback's
    order is found as the app's newest (DescribeApplicationStatus.LastChangeOrderId).
    """
    from sandbox.services.sae.apps import roll_back_to_running_version

    scope, order = _order_or_404(call)
    _require_active(order)
    abort(call.tx, scope, order, call.now)
    roll_back_to_running_version(call, scope, order["AppId"])
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def confirm_pipeline_batch(call: Call) -> dict[str, Any]:
    scope, order, index = _pipeline_or_404(call)
    confirm = call.params.flag("Confirm")
    waiting = int(order["current"])
    if int(order["Status"]) != WAIT_CONFIRM or index not in (waiting, waiting - 1):
        raise ApiError(
            400,
            "InvalidParameter.WithMessage",
            "The parameter is invalid {PipelineId}: no batch of this change order is waiting for "
            "confirmation.",
        )
    if confirm:
        order["Status"] = RUNNING
        order["cursor"] = call.now
        call.tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    else:
        abort(call.tx, scope, order, call.now)
    return {"Data": {"PipelineId": call.params.text("PipelineId")}}
