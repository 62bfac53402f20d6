"""Moves SAE change orders forward in time, in the background, as the real service does.

Each tick runs in one store transaction: every active change order advances through the tasks
whose time has come. Task times chain (a task starts when the previous one ended, not when the
tick noticed), so a change order takes `timing.change_order_seconds` however coarse the ticks.
The "Pull image" task asks `image_pull.judge_image_pull` at the moment it completes, so changes
made to either account while the order runs count, as they would in the real cloud.
"""

from __future__ import annotations

from sandbox.services.sae import lifecycle
from sandbox.services.sae.documents import (
    ABNORMAL,
    ABORTED,
    ACTIVE_INDEX,
    AUTO_WAIT,
    CHANGE_ORDER,
    FAILED,
    PREPARING,
    RUNNING,
    SUCCESS,
    SYSTEM_FAIL,
    WAIT_CONFIRM,
    ChangeOrder,
    Pipeline,
    Stage,
    Task,
    as_active_ref,
    as_change_order,
    ms,
)
from sandbox.services.sae.image_pull import judge_image_pull
from sandbox.services.sae.lifecycle import clock, is_active
from sandbox.store import GLOBAL, Scope, Tx
from sandbox.world import World

INDEX_SCOPE = Scope("", GLOBAL)


def tick(tx: Tx, world: World, now: float) -> int:
    """Advance every active change order; returns how many are still active."""
    active = 0
    for ref in map(as_active_ref, tx.all(INDEX_SCOPE, ACTIVE_INDEX)):
        scope = Scope(ref["account"], ref["region"])
        doc = tx.get(scope, CHANGE_ORDER, ref["id"])
        order = None if doc is None else as_change_order(doc)
        if order is not None and is_active(order):
            _advance(tx, world, scope, order, now)
            tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
        if order is None or not is_active(order):
            tx.delete(INDEX_SCOPE, ACTIVE_INDEX, ref["id"])
        else:
            active += 1
    return active


def _advance(tx: Tx, world: World, scope: Scope, order: ChangeOrder, now: float) -> None:
    if order["Status"] == PREPARING:
        order["Status"] = RUNNING
        order["cursor"] = order["created_at"]
    if order["SubStatus"] == ABNORMAL:
        return  # waits for AbortChangeOrder or AbortAndRollbackChangeOrder
    while True:
        if order["Status"] == WAIT_CONFIRM:
            return
        if order["Status"] == AUTO_WAIT:
            wait_until = order["wait_until"]
            assert wait_until is not None  # set with AUTO_WAIT
            if now < wait_until:
                return
            order["Status"] = RUNNING
            order["cursor"] = wait_until
        if order["Status"] != RUNNING:
            return
        pipeline = order["pipelines"][order["current"]]
        if pipeline["Status"] == PREPARING:
            pipeline["Status"] = RUNNING
            pipeline["StartTime"] = ms(order["cursor"])
        step = _next_task(pipeline)
        if step is None:
            _finish_pipeline(tx, scope, order, pipeline, now)
            continue
        stage, task = step
        if task["Status"] == PREPARING:
            task["Status"] = RUNNING
            task["started_at"] = order["cursor"]
            stage["Status"] = RUNNING
        started = task["started_at"]
        assert started is not None  # set when the task started running
        ends = started + task["seconds"]
        if now < ends:
            return
        order["cursor"] = ends
        pipeline["UpdateTime"] = ms(ends)
        if not _complete(tx, world, scope, order, task, ends):
            _fail(stage, task, pipeline, order, ends)
            return
        task["Status"] = SUCCESS
        if all(t["Status"] == SUCCESS for t in stage["tasks"]):
            stage["Status"] = SUCCESS


def _next_task(pipeline: Pipeline) -> tuple[Stage, Task] | None:
    for stage in pipeline["stages"]:
        for task in stage["tasks"]:
            if task["Status"] != SUCCESS:
                return stage, task
    return None


def _finish_pipeline(
    tx: Tx, scope: Scope, order: ChangeOrder, pipeline: Pipeline, now: float
) -> None:
    pipeline["Status"] = SUCCESS
    if order["current"] + 1 < len(order["pipelines"]):
        order["current"] += 1
        if order["BatchType"] == "manual":
            order["Status"] = WAIT_CONFIRM
        elif float(order["BatchWaitTime"]) > 0:
            order["Status"] = AUTO_WAIT
            order["wait_until"] = float(order["cursor"]) + float(order["BatchWaitTime"])
        return
    order["Status"] = SUCCESS
    order["ErrorMessage"] = "success"
    order["FinishTime"] = clock(order["cursor"])
    lifecycle.on_change_order_succeeded(tx, scope, order, now)


def _complete(
    tx: Tx, world: World, scope: Scope, order: ChangeOrder, task: Task, at: float
) -> bool:
    """Carry out a task's effect; False when it fails (the task's messages are set)."""
    kind = task["kind"]
    batch = int(order["current"])
    if kind == "pull":
        app = lifecycle.find_app(tx, scope, order["AppId"])
        namespace = lifecycle.namespace_of(tx, scope, app) if app else None
        if app is None or namespace is None:
            task["ErrorMessage"] = "The application or its namespace no longer exists."
            order["Status"] = SYSTEM_FAIL
            return False
        verdict = judge_image_pull(
            tx,
            world,
            app_account=scope.account,
            region=scope.region,
            namespace=namespace,
            config=order["target"],
            now=at,
        )
        order["pull"] = {"ok": verdict.ok, "reason": verdict.reason}
        if not verdict.ok:
            task["ErrorMessage"] = verdict.message
            task["Message"] = verdict.message
            task["ErrorCode"] = "ImagePullFailed"
            lifecycle.on_pull_failed(tx, scope, order, batch, at)
            return False
        task["Message"] = f'Successfully pulled image "{order["target"].get("ImageUrl", "")}".'
    elif kind == "start":
        lifecycle.on_batch_started(tx, scope, order, batch, at)
        task["Message"] = f"{order['pipelines'][batch]['instances']} instance(s) started."
    elif kind == "stop":
        lifecycle.on_stopped(tx, scope, order, at)
        task["Message"] = "Instances stopped."
    elif kind == "delete":
        lifecycle.on_deleted(tx, scope, order)
        task["Message"] = "Application released."
    else:
        task["Message"] = "Done."
    return True


def _fail(stage: Stage, task: Task, pipeline: Pipeline, order: ChangeOrder, at: float) -> None:
    """The task, its stage and batch failed. A failure in a later batch of a batch release leaves
    the order running with SubStatus 1 (documents.ABNORMAL); otherwise the order failed."""
    task["Status"] = FAILED
    stage["Status"] = FAILED
    pipeline["Status"] = FAILED
    order["ErrorMessage"] = task["ErrorMessage"]
    if order["Status"] == RUNNING and int(order["current"]) > 0:
        order["SubStatus"] = ABNORMAL
        return
    if order["Status"] != SYSTEM_FAIL:
        order["Status"] = FAILED
    order["FinishTime"] = clock(at)
    for later in order["pipelines"][order["current"] + 1 :]:
        later["Status"] = ABORTED
