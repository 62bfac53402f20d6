"""Follow an SAE change order to its end, saying where it is and, on failure, where it broke.

Polling backs off while nothing moves (0.5 s growing x1.6 up to 10 s) and tightens again as soon
as a status, batch, stage or task changes, and while the last batch's last stage runs (the end is
near). Each poll is one DescribeChangeOrder, plus one DescribePipeline of the current batch only
while the order is running: SAE allows 60 calls a minute per user.

Batch releases are reported batch by batch. Status 8 (a batch waiting to be confirmed) is
confirmed here with ConfirmPipelineBatch when the spec's `rollout.confirm` is auto; when it is
manual, the waiting batch is named and waited on until the timeout, as is status 11 (waiting for
approval). Status 9 (SAE's own wait between batches) moves by itself. A timeout leaves the order
running: it is the user's to abort or confirm, not ours.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, cast
from uuid import UUID

from alibabacloud_sae20190506 import models as sae_models
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call

SUCCESS = 2
FAILURES = frozenset({3, 6, 10})
RUNNING = 1
WAIT_CONFIRM, AUTO_WAIT, WAIT_APPROVAL = 8, 9, 11
Confirm = Literal["auto", "manual"]

STATES = {
    0: "preparing",
    1: "running",
    2: "succeeded",
    3: "failed",
    6: "aborted",
    8: "waiting for the next batch to be confirmed",
    9: "waiting between batches",
    10: "failed with a system error",
    11: "waiting for approval",
    12: "approved, waiting to run",
}

CONSOLE = "https://sae.console.aliyun.com/#/AppList/ChangeOrderDetail?changeOrderId={id}&regionId={region}"


@dataclass(frozen=True)
class PollPolicy:
    initial_seconds: float = 0.5
    factor: float = 1.6
    max_seconds: float = 10.0


DEFAULT_POLL = PollPolicy()


@dataclass(frozen=True)
class Progress:
    change_order_id: str
    status: int
    state: str
    """The status in words."""
    batch: int
    """1-based batch in progress (or waiting to start)."""
    batches: int
    stage: str
    task: str
    tasks_done: int
    tasks_total: int
    elapsed_seconds: float
    console_url: str
    batches_done: int = 0

    @property
    def fraction(self) -> float:
        if self.status == SUCCESS:
            return 1.0
        return self.tasks_done / self.tasks_total if self.tasks_total else 0.0

    def line(self) -> str:
        """`batch 1 of 2 · Deploy / Pull image · running · 12s`."""
        if self.status == WAIT_CONFIRM:
            waits = f"batch {self.batch} of {self.batches} waits to be confirmed"
            return (
                f"{waits} (SAE console or ConfirmPipelineBatch) · {duration(self.elapsed_seconds)}"
            )
        if self.status == AUTO_WAIT:
            waits = f"batch {self.batch} of {self.batches} starts after the wait between batches"
            return f"{waits} · {duration(self.elapsed_seconds)}"
        parts = [f"batch {self.batch} of {self.batches}"]
        if self.stage:
            parts.append(f"{self.stage} / {self.task}" if self.task else self.stage)
        parts += [self.state, duration(self.elapsed_seconds)]
        return " · ".join(parts)


@dataclass(frozen=True)
class ChangeOrderOutcome:
    change_order_id: str
    status: int
    state: str
    succeeded: bool
    timed_out: bool
    elapsed_seconds: float
    batches: int
    console_url: str
    error_message: str = ""
    """The order's ErrorMessage."""
    failed_batch: int | None = None
    failed_stage: str = ""
    failed_task: str = ""
    task_error: str = ""
    """The failed task's ErrorMessage (DescribePipeline), the most precise reason SAE gives."""
    confirmed_batches: tuple[int, ...] = ()
    """Batches this run confirmed (ConfirmPipelineBatch), 1-based."""

    def summary(self) -> str:
        short = self.change_order_id[:8] + "…"
        after = duration(self.elapsed_seconds)
        if self.succeeded and self.confirmed_batches:
            confirmed = ", ".join(map(str, self.confirmed_batches))
            return (
                f"Change order {short} succeeded after {after} ({self.batches} batch(es); "
                f"batch {confirmed} confirmed by this run)."
            )
        if self.succeeded:
            return f"Change order {short} succeeded after {after} ({self.batches} batch(es))."
        if self.timed_out:
            return (
                f"Change order {short} is still {self.state} after {after}; it was left as it "
                f"is: {self.console_url}"
            )

        where = f" at batch {self.failed_batch}/{self.batches}" if self.failed_batch else ""
        if self.failed_stage:
            where += f', stage "{self.failed_stage}"'
        if self.failed_task:
            where += f', task "{self.failed_task}"'
        reason = self.task_error or self.error_message or "no reason given"
        return f"Change order {short} {self.state}{where} (after {after}):\n  {reason}"


def duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def follow_change_order(
    creds_a: AlibabaCloudCredentials,
    change_order_id: str,
    *,
    timeout_seconds: float,
    on_progress: Callable[[Progress], None] | None = None,
    poll: PollPolicy = DEFAULT_POLL,
    region: str | None = None,
    confirm: Confirm = "manual",
) -> ChangeOrderOutcome:
    """Poll until the order ends or the timeout; never aborts it.

    With `confirm="auto"` a batch waiting to be confirmed (status 8) is confirmed at once.
    """
    sae = creds_a.get_client("sae")
    url = CONSOLE.format(id=change_order_id, region=region or creds_a.region_id)
    started = time.monotonic()
    interval = poll.initial_seconds
    last_signature: tuple[Any, ...] | None = None
    tasks_per_batch = 0
    spot, spot_index = _Spot(), 0
    confirmed: list[int] = []
    while True:
        order = _describe_order(sae, change_order_id)
        status = int(order.status or 0)
        pipelines = list(order.pipelines or [])
        batches = len(pipelines) or int(order.batch_count or 1)
        index = next(
            (i for i, p in enumerate(pipelines) if p.pipeline_id == order.current_pipeline_id), 0
        )
        done_batches = sum(1 for p in pipelines if p.status == SUCCESS)
        if status == RUNNING and order.current_pipeline_id:
            spot = _locate(_describe_pipeline(sae, str(order.current_pipeline_id)))
            tasks_per_batch = spot.tasks or tasks_per_batch
            if pipelines and pipelines[index].status == SUCCESS:
                spot = replace(spot, done=0)  # already counted as a finished batch
        elif index != spot_index:
            spot = _Spot()
        spot_index = index
        elapsed = time.monotonic() - started
        progress = Progress(
            change_order_id=change_order_id,
            status=status,
            state=STATES.get(status, f"in status {status}"),
            batch=index + 1,
            batches=batches,
            stage=spot.stage,
            task=spot.task,
            tasks_done=done_batches * (tasks_per_batch or 1) + spot.done,
            tasks_total=batches * (tasks_per_batch or 1),
            elapsed_seconds=elapsed,
            console_url=url,
            batches_done=done_batches,
        )
        if on_progress is not None:
            on_progress(progress)
        if status == SUCCESS or status in FAILURES:
            return replace(
                _outcome(sae, order, progress, pipelines), confirmed_batches=(*confirmed,)
            )
        if elapsed >= timeout_seconds:
            outcome = _outcome(sae, order, progress, pipelines, timed_out=True)
            return replace(outcome, confirmed_batches=(*confirmed,))
        if status == WAIT_CONFIRM and confirm == "auto" and order.current_pipeline_id:
            if _confirm_batch(sae, str(order.current_pipeline_id)):
                confirmed.append(index + 1)
            interval = poll.initial_seconds
            continue
        signature = (status, order.current_pipeline_id, spot.stage, spot.task, spot.done)
        near_end = spot.last_stage and index == batches - 1
        if signature != last_signature or near_end:
            interval = poll.initial_seconds
        else:
            interval = min(interval * poll.factor, poll.max_seconds)
        last_signature = signature
        time.sleep(max(0.0, min(interval, timeout_seconds - elapsed)))


@task(name="follow-change-order", cache_policy=NO_CACHE)
def follow(
    creds_a: AlibabaCloudCredentials,
    change_order_id: str,
    *,
    timeout_seconds: float,
    region: str | None = None,
    confirm: Confirm = "manual",
) -> ChangeOrderOutcome:
    """Follow a change order with a Prefect progress artifact and a log line per step and batch;
    `confirm="auto"` confirms waiting batches."""
    logger = get_run_logger()
    key = re.sub(r"[^a-z0-9-]", "-", f"change-order-{change_order_id}".lower())
    created = create_progress_artifact(0.0, key=key, description="change order starting")
    artifact_id = cast(UUID, created)  # sync in a sync task (the stub also allows a coroutine)
    said = ""
    done = 0

    def report(progress: Progress) -> None:
        nonlocal said, done
        while progress.batches > 1 and progress.batches_done > done:
            done += 1
            logger.info(
                "change order %s: batch %d of %d done", change_order_id[:8], done, progress.batches
            )
        update_progress_artifact(
            artifact_id,
            progress=round(progress.fraction * 100, 1),
            description=f"{progress.line()} · [console]({progress.console_url})",
        )
        step = (progress.batch, progress.stage, progress.task, progress.state)
        if str(step) != said:
            said = str(step)
            logger.info("change order %s: %s", change_order_id[:8], progress.line())

    url = CONSOLE.format(id=change_order_id, region=region or creds_a.region_id)
    logger.info("following change order %s: %s", change_order_id, url)
    outcome = follow_change_order(
        creds_a,
        change_order_id,
        timeout_seconds=timeout_seconds,
        on_progress=report,
        region=region,
        confirm=confirm,
    )
    for batch in outcome.confirmed_batches:
        logger.info("change order %s: confirmed batch %d", change_order_id[:8], batch)
    (logger.info if outcome.succeeded else logger.error)("%s", outcome.summary())
    return outcome


# -- internals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spot:
    """Where a pipeline stands: its running (or first unfinished) stage and task."""

    stage: str = ""
    task: str = ""
    done: int = 0
    tasks: int = 0
    last_stage: bool = False


def _describe_order(sae: Any, change_order_id: str) -> Any:
    request = sae_models.DescribeChangeOrderRequest(change_order_id=change_order_id)
    return call("sae:DescribeChangeOrder", sae.describe_change_order, request).body.data


def _confirm_batch(sae: Any, pipeline_id: str) -> bool:
    """Start the waiting batch; False when it was no longer waiting (confirmed meanwhile)."""
    request = sae_models.ConfirmPipelineBatchRequest(pipeline_id=pipeline_id, confirm=True)
    try:
        call("sae:ConfirmPipelineBatch", sae.confirm_pipeline_batch, request)
    except CloudError as exc:
        if exc.code != "InvalidParameter.WithMessage":
            raise
        return False
    return True


def _describe_pipeline(sae: Any, pipeline_id: str) -> Any:
    request = sae_models.DescribePipelineRequest(pipeline_id=pipeline_id)
    return call("sae:DescribePipeline", sae.describe_pipeline, request).body.data


def _locate(pipeline: Any) -> _Spot:
    stages = list(pipeline.stage_list or [])
    tasks = [t for s in stages for t in s.task_list or []]
    done = sum(1 for t in tasks if t.status == SUCCESS)
    for number, stage in enumerate(stages):
        if stage.status == SUCCESS:
            continue
        stage_tasks = list(stage.task_list or [])
        current = next((t for t in stage_tasks if t.status == RUNNING), None) or next(
            (t for t in stage_tasks if t.status != SUCCESS), None
        )
        return _Spot(
            str(stage.stage_name or ""),
            str(current.task_name or "") if current else "",
            done,
            len(tasks),
            number == len(stages) - 1 and stage.status == RUNNING,
        )
    return _Spot(done=done, tasks=len(tasks))


def _outcome(
    sae: Any, order: Any, progress: Progress, pipelines: list[Any], *, timed_out: bool = False
) -> ChangeOrderOutcome:
    outcome = ChangeOrderOutcome(
        change_order_id=progress.change_order_id,
        status=progress.status,
        state=progress.state,
        succeeded=progress.status == SUCCESS,
        timed_out=timed_out,
        elapsed_seconds=progress.elapsed_seconds,
        batches=progress.batches,
        console_url=progress.console_url,
        error_message=str(order.error_message or ""),
    )
    if progress.status not in FAILURES:
        return outcome
    index, pipeline_id = next(
        ((i, p.pipeline_id) for i, p in enumerate(pipelines) if p.status in FAILURES),
        (progress.batch - 1, order.current_pipeline_id),
    )
    if not pipeline_id:
        return outcome
    for stage in _describe_pipeline(sae, str(pipeline_id)).stage_list or []:
        failed = next((t for t in stage.task_list or [] if t.status in FAILURES), None)
        if failed is not None:
            return replace(
                outcome,
                failed_batch=index + 1,
                failed_stage=str(stage.stage_name or ""),
                failed_task=str(failed.task_name or ""),
                task_error=str(failed.error_message or failed.message or ""),
            )
    return replace(outcome, failed_batch=index + 1)
