"""SAE change orders: the API that reads and steers them (DescribeChangeOrder, ListChangeOrders,
DescribePipeline, AbortChangeOrder, AbortAndRollbackChangeOrder, ConfirmPipelineBatch).

A change order is one store document (kind `sae_change_order`, `documents.ChangeOrder`) holding
its pipelines (one per batch), each with stages and tasks. `lifecycle.py` builds and aborts them,
`engine.py` moves them forward in the background.

Status codes (reference 2.5): 0 preparing, 1 running, 2 success, 3 failed, 6 aborted,
8 waiting for batch confirmation, 9 automatic batch wait, 10 system failure. SubStatus 1
(abnormal): a batch after the first failed, and the order stays running until it is aborted or
rolled back (see `documents.ABNORMAL`).
"""

from __future__ import annotations

from typing import Any

from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.documents import (
    ABORTED,
    CHANGE_ORDER,
    FAILED,
    RUNNING,
    STATUS_NAMES,
    WAIT_CONFIRM,
    ChangeOrder,
    Pipeline,
    as_change_order,
)
from sandbox.services.sae.lifecycle import (
    abort,
    app_or_404,
    find_change_order,
    require_active,
    roll_back_to_running_version,
)
from sandbox.services.sae.namespaces import regions
from sandbox.store import Doc, Scope


def _order_or_404(call: Call) -> tuple[Scope, ChangeOrder]:
    change_order_id = call.params.text("ChangeOrderId")
    if not change_order_id:
        raise ApiError(
            400, "InvalidParameter.NotEmpty", "You must specify the parameter ChangeOrderId."
        )
    found = find_change_order(call.tx, call.caller.account, change_order_id, regions(call))
    if found is None:
        raise ApiError(
            400, "InvalidChangeOrder.NotFound", "The current change order does not exist."
        )
    return found


def _pipeline_or_404(call: Call) -> tuple[Scope, ChangeOrder, int]:
    pipeline_id = call.params.text("PipelineId")
    if not pipeline_id:
        raise ApiError(
            400, "InvalidParameter.NotEmpty", "You must specify the parameter PipelineId."
        )
    for region in regions(call):
        scope = call.scope(region)
        for order in map(as_change_order, call.tx.all(scope, CHANGE_ORDER)):
            for index, pipeline in enumerate(order["pipelines"]):
                if pipeline["PipelineId"] == pipeline_id:
                    return scope, order, index
    raise ApiError(
        400,
        "InvalidParameter.Obviously",
        f"The specified parameter is invalid {{PipelineId: {pipeline_id}}}.",
    )


def _pipeline_summary(pipeline: Pipeline) -> Doc:
    return {
        "PipelineId": pipeline["PipelineId"],
        "PipelineName": pipeline["PipelineName"],
        "Status": pipeline["Status"],
        "StartTime": pipeline["StartTime"],
        "UpdateTime": pipeline["UpdateTime"],
        "BatchType": pipeline["BatchType"],
        "ParallelCount": pipeline["ParallelCount"],
    }


def current_pipeline_id(order: ChangeOrder) -> str:
    index = min(int(order["current"]), len(order["pipelines"]) - 1)
    return str(order["pipelines"][index]["PipelineId"])


def order_view(order: ChangeOrder) -> Doc:
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
    app_scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    status = call.params.text("CoStatus")
    co_type = call.params.text("CoType")
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=1, maximum=10000)
    orders = [
        o
        for o in map(as_change_order, call.tx.all(app_scope, CHANGE_ORDER))
        if o["AppId"] == app["AppId"]
    ]
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


def abort_change_order(call: Call) -> dict[str, Any]:
    scope, order = _order_or_404(call)
    rollback = call.params.flag("Rollback")
    require_active(order)
    abort(call.tx, scope, order, call.now)
    if rollback:
        roll_back_to_running_version(call, scope, order["AppId"])
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def abort_and_rollback_change_order(call: Call) -> dict[str, Any]:
    """Abort the order and start a rollback to the version the app ran before it.

    Data.ChangeOrderId is the aborted order's own id, as in the API reference's example (request
    and response carry the same id,
    https://www.alibabacloud.com/help/en/sae/latest/abortandrollbackchangeorder); the rollback's
    order is found as the app's newest (DescribeApplicationStatus.LastChangeOrderId).
    """
    scope, order = _order_or_404(call)
    require_active(order)
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
