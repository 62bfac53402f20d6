"""Follow an SAE change order to its end, saying where it is and, on failure, where it broke.

SAE allows 60 OpenAPI calls a minute per user, so a follow spends at most
`PollPolicy.calls_per_minute` (20) SAE calls in any minute, and spends them where they count:

- DescribeChangeOrder is first read 1 s after the order starts, then backs off while nothing
  moves (growing x1.6 up to 10 s) and tightens to 0.5 s again when the status or the running
  batch changes.
- DescribePipeline (stage and task, for the progress line) is read only once the order has run
  3 s, and then when DescribeChangeOrder shows the running batch moved (its status, or its
  UpdateTime after a task), or every 30 s: a short order costs two or three reads in all.
- The end of the running batch is estimated from SAE's own stamps: the batch's StartTime and
  UpdateTime over the tasks it finished, times the tasks left. From just before that estimate the
  order is polled every 0.5 s, paid from a reserve of the budget kept for it, so the end is still
  noticed within a poll or so. Near that end a pipeline read is made only when SAE's quota pacing
  (crossdeploy/quota.py) has a slot to spare for it besides the poll that sees the end and the
  verify: the rate limit frees a slot a second, and a read that took theirs made both wait.

Batch releases are reported batch by batch. Status 8 (a batch waiting to be confirmed) is
confirmed here with ConfirmPipelineBatch when the spec's `rollout.confirm` is auto; when it is
manual, the waiting batch is named and waited on until the timeout, as is status 11 (waiting for
approval); with `confirm="ask"` the follow ends at the waiting batch, for its caller to ask a
person (tasks/batch_confirmation.py pauses the flow run with a Confirm/Abort form).
Status 9 (SAE's own wait between batches) moves by itself. A timeout leaves the order
running: it is the user's to abort or confirm, not ours.

SubStatus 1 (abnormal) is a failure, seen at once: a batch failed and SAE keeps the order
"executing" until someone rolls it back or aborts it (DescribeChangeOrder: "if a batch release
fails, you must manually perform a rollback, leaving the release order in the In Progress
state"), so waiting for it to end would only wait out the timeout.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast
from uuid import UUID

from alibabacloud_sae20190506 import models as sae_models
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from blocks import AlibabaCloudCredentials
from crossdeploy import quota
from crossdeploy.cloud import CloudError, call, write_once
from crossdeploy.in_flight import doing

SUCCESS = 2
ABORTED = 6
FAILURES = frozenset({3, ABORTED, 10})
RUNNING = 1
WAIT_CONFIRM, AUTO_WAIT, WAIT_APPROVAL = 8, 9, 11
ABNORMAL = 1
"""DescribeChangeOrder's SubStatus when a batch failed and the order waits for a rollback."""
ABNORMAL_STATE = "abnormal: a batch failed; executing until rolled back or aborted"
Confirm = Literal["auto", "manual", "ask"]
"""auto: confirm waiting batches; manual: wait for someone else to; ask: return at a waiting
batch (`ChangeOrderOutcome.waiting_pipeline_id`)."""
T = TypeVar("T")

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

NEAR_END_CALLS = 3
"""SAE calls due when a batch's end is near: a pipeline read, the poll that sees the end, the
verify."""

CONSOLE = "https://sae.console.aliyun.com/#/AppList/ChangeOrderDetail?changeOrderId={id}&regionId={region}"


@dataclass(frozen=True)
class PollPolicy:
    """When to poll a change order, and how many SAE calls one follow may spend."""

    first_seconds: float = 1.0
    """The first read, this long after the order started (and the interval then grows from it):
    an order pulls an image and starts a container before it can end, so an earlier read only
    spends a call."""
    initial_seconds: float = 0.5
    """The interval after the order moved, and while the running batch's end is near."""
    factor: float = 1.6
    """The interval grows by this while nothing moves..."""
    max_seconds: float = 10.0
    """...up to this."""
    calls_per_minute: int = 20
    """The most SAE calls (DescribeChangeOrder, DescribePipeline, ConfirmPipelineBatch) one follow
    makes in any `minute_seconds`: a third of SAE's 60 a minute per user, so a deploy and other
    callers stay well under it."""
    reserve: int = 8
    """Of `calls_per_minute`, the calls spent only near a batch's estimated end."""
    near_end_seconds: float = 0.5
    """Poll every `initial_seconds` from this long before a batch's estimated end to twice as
    long after it..."""
    settle_seconds: float = 0.2
    """...at times this long after the estimate plus whole intervals: SAE shows the order done a
    moment after its last task ends."""
    pipeline_seconds: float = 30.0
    """DescribePipeline at least this often while a batch runs, even when nothing seems to move."""
    pipeline_after_seconds: float = 3.0
    """No DescribePipeline before the order has run this long: a shorter order ends before its
    stage and task matter (the progress line names the batch until then)."""
    minute_seconds: float = 60.0
    """The budget's minute (shortened for sandboxes with shortened minutes)."""

    def __post_init__(self) -> None:
        if not 0 <= self.reserve < self.calls_per_minute:
            raise ValueError("PollPolicy.reserve must be at least 0 and below calls_per_minute")
        if min(self.first_seconds, self.initial_seconds, self.minute_seconds) <= 0 or (
            self.factor < 1 or self.pipeline_after_seconds < 0
        ):
            raise ValueError("PollPolicy needs positive seconds and a factor of at least 1")


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
    abnormal: bool = False
    """SubStatus 1: failed, yet still executing until rolled back or aborted
    (AbortAndRollbackChangeOrder)."""
    waiting_pipeline_id: str = ""
    """With `confirm="ask"`: the batch (pipeline) that waits to be confirmed, `waiting_batch`."""
    waiting_batch: int = 0
    refused_batch: int | None = None
    """The batch a person refused (Abort): the order is to be aborted, not followed further."""

    def summary(self) -> str:
        short = self.change_order_id[:8] + "…"
        after = duration(self.elapsed_seconds)
        if self.refused_batch is not None:
            return (
                f"Change order {short}: batch {self.refused_batch} of {self.batches} was refused "
                f"(Abort) after {after}."
            )
        if self.waiting_pipeline_id:
            return (
                f"Change order {short}: batch {self.waiting_batch} of {self.batches} waits to be "
                f"confirmed ({after})."
            )
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
        if self.abnormal:
            return (
                f"Change order {short} failed{where} (after {after}); SAE keeps it executing "
                f"(SubStatus 1, abnormal) until it is rolled back or aborted:\n  {reason}"
            )
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

    With `confirm="auto"` a batch waiting to be confirmed (status 8) is confirmed at once; with
    `confirm="ask"` the follow returns there, naming the waiting batch.
    """
    url = CONSOLE.format(id=change_order_id, region=region or creds_a.region_id)
    with doing(f"follow change order {change_order_id[:8]}"):
        return _follow(
            _Follower(creds_a.get_client("sae"), change_order_id, poll, url),
            timeout_seconds,
            on_progress,
            confirm,
        )


def _follow(
    follower: _Follower,
    timeout_seconds: float,
    on_progress: Callable[[Progress], None] | None,
    confirm: Confirm,
) -> ChangeOrderOutcome:
    deadline = follower.started + timeout_seconds
    while True:
        seen = follower.observe()
        progress = follower.progress(seen)
        if on_progress is not None:
            on_progress(progress)
        ended = follower.ended(seen, progress, deadline, confirm)
        if ended is not None:
            return ended
        if seen.status == WAIT_CONFIRM and confirm == "auto" and seen.pipeline_id:
            follower.confirm(seen)
            continue
        due = follower.next_poll(seen)
        if due >= deadline:
            return follower.wait_out(seen, progress, deadline)
        time.sleep(max(0.0, due - time.monotonic()))


@dataclass(frozen=True)
class _Seen:
    """One DescribeChangeOrder read, as the follow judges it."""

    order: Any
    status: int
    abnormal: bool
    pipelines: list[Any]
    index: int
    """The running batch, 0-based."""
    moved: bool
    """The status, the running batch or a batch's status changed since the last read."""
    near: bool
    """Within the tight polls around the running batch's estimated end."""
    now: float

    @property
    def pipeline_id(self) -> str:
        return str(self.order.current_pipeline_id or "")


class _Follower:
    """What a follow remembers between polls: what moved, where the batch stands, the budget."""

    def __init__(self, sae: Any, change_order_id: str, poll: PollPolicy, url: str) -> None:
        self.sae, self.change_order_id, self.poll, self.url = sae, change_order_id, poll, url
        self.started = time.monotonic()
        self.budget = _Budget(poll)
        self.interval = poll.first_seconds
        self.reads = 0
        self.last_move: tuple[Any, ...] | None = None
        self.last_stamp: Any = None
        self.pending, self.read_at = True, self.started
        self.tasks_per_batch = 0
        self.spot, self.spot_index = _Spot(), 0
        self.pace = _Pace()
        self.confirmed: list[int] = []

    def observe(self) -> _Seen:
        """Read the order, then its running pipeline when that is worth a call."""
        if not self.reads:
            time.sleep(max(0.0, self.started + self.poll.first_seconds - time.monotonic()))
        self.reads += 1
        order = self.budget.call(0, describe_order, self.sae, self.change_order_id)
        status = int(order.status or 0)
        pipelines = list(order.pipelines or [])
        index = next(
            (i for i, p in enumerate(pipelines) if p.pipeline_id == order.current_pipeline_id), 0
        )
        current = pipelines[index] if pipelines else None
        move = (status, order.current_pipeline_id, tuple(p.status for p in pipelines))
        stamp = current.update_time if current is not None else None
        moved = move != self.last_move
        self.pending = self.pending or moved or stamp != self.last_stamp
        self.last_move, self.last_stamp = move, stamp
        now = time.monotonic()
        seen = _Seen(
            order=order,
            status=status,
            abnormal=int(order.sub_status or 0) == ABNORMAL and status != SUCCESS,
            pipelines=pipelines,
            index=index,
            moved=moved,
            near=self.pace.near(now, self.poll) and status == RUNNING,
            now=now,
        )
        self._locate(seen)
        return seen

    def _locate(self, seen: _Seen) -> None:
        """DescribePipeline (stage, task, the batch's pace) when the batch moved or every
        `pipeline_seconds`, if the budget allows; a new batch not read yet starts blank."""
        if seen.status == RUNNING and seen.pipeline_id:
            wanted = self.pending or seen.now - self.read_at >= self.poll.pipeline_seconds
            early = seen.now - self.started < self.poll.pipeline_after_seconds
            if wanted and not early and self._worth_a_slot(seen) and self.budget.ready(seen.near):
                pipeline = self.budget.call(0, _describe_pipeline, self.sae, seen.pipeline_id)
                self.spot, self.read_at, self.pending = _locate(pipeline), seen.now, False
                self.tasks_per_batch = self.spot.tasks or self.tasks_per_batch
                if seen.pipelines:
                    self.pace.update(seen.pipelines[seen.index], self.spot)
                if seen.pipelines and seen.pipelines[seen.index].status == SUCCESS:
                    self.spot = replace(self.spot, done=0)  # already counted as a finished batch
        elif seen.index != self.spot_index:
            self.spot = _Spot()
        self.spot_index = seen.index

    @staticmethod
    def _worth_a_slot(seen: _Seen) -> bool:
        """Near the batch's end a pipeline read (for the progress line) only when SAE's quota
        has a slot for it besides those of the poll that sees the end and of the verify after
        it: either would otherwise wait a second or more for the slot the read took."""
        room = quota.spare()
        return not seen.near or room is None or room >= NEAR_END_CALLS

    def progress(self, seen: _Seen) -> Progress:
        batches = len(seen.pipelines) or int(seen.order.batch_count or 1)
        done_batches = sum(1 for p in seen.pipelines if p.status == SUCCESS)
        state = STATES.get(seen.status, f"in status {seen.status}")
        return Progress(
            change_order_id=self.change_order_id,
            status=seen.status,
            state=ABNORMAL_STATE if seen.abnormal else state,
            batch=seen.index + 1,
            batches=batches,
            stage=self.spot.stage,
            task=self.spot.task,
            tasks_done=done_batches * (self.tasks_per_batch or 1) + self.spot.done,
            tasks_total=batches * (self.tasks_per_batch or 1),
            elapsed_seconds=seen.now - self.started,
            console_url=self.url,
            batches_done=done_batches,
        )

    def ended(
        self, seen: _Seen, progress: Progress, deadline: float, confirm: Confirm
    ) -> ChangeOrderOutcome | None:
        """The outcome when the follow ends here: the order ended (or is abnormal), the time is
        up, or a batch waits for a person (`confirm="ask"`); None to poll on."""
        if seen.status == SUCCESS or seen.status in FAILURES or seen.abnormal:
            return self.outcome(seen, progress, abnormal=seen.abnormal)
        if seen.now >= deadline:
            return self.outcome(seen, progress, timed_out=True)
        if seen.status == WAIT_CONFIRM and confirm == "ask" and seen.pipeline_id:
            return replace(
                self.outcome(seen, progress),
                waiting_pipeline_id=seen.pipeline_id,
                waiting_batch=seen.index + 1,
            )
        return None

    def outcome(
        self, seen: _Seen, progress: Progress, *, timed_out: bool = False, abnormal: bool = False
    ) -> ChangeOrderOutcome:
        outcome = _outcome(
            self.sae,
            self.budget,
            seen.order,
            progress,
            seen.pipelines,
            timed_out=timed_out,
            abnormal=abnormal,
        )
        return replace(outcome, confirmed_batches=(*self.confirmed,))

    def confirm(self, seen: _Seen) -> None:
        """`confirm="auto"`: start the waiting batch, then poll again at once."""
        if _confirm_batch(self.sae, self.budget, self.change_order_id, seen.pipeline_id):
            self.confirmed.append(seen.index + 1)
        self.interval = self.poll.initial_seconds

    def next_poll(self, seen: _Seen) -> float:
        """When to read the order next: soon after a move or near the batch's end, later and
        later while nothing moves, always within the budget."""
        if (seen.moved and self.reads > 1) or seen.near:  # the first read is no move
            self.interval = self.poll.initial_seconds
        else:
            self.interval = min(self.interval * self.poll.factor, self.poll.max_seconds)
        window = self.pace.window(self.poll) if seen.status == RUNNING else None
        wanted = self.pace.next_near(seen.now, self.poll) if seen.near else seen.now + self.interval
        return self.budget.due(seen.now, wanted, window)

    def wait_out(self, seen: _Seen, progress: Progress, deadline: float) -> ChangeOrderOutcome:
        """No poll fits before the deadline: wait for it and end as timed out."""
        time.sleep(max(0.0, deadline - time.monotonic()))
        progress = replace(progress, elapsed_seconds=time.monotonic() - self.started)
        return self.outcome(seen, progress, timed_out=True)


@task(name="follow-change-order", cache_policy=NO_CACHE)
def follow(
    creds_a: AlibabaCloudCredentials,
    change_order_id: str,
    *,
    timeout_seconds: float,
    region: str | None = None,
    confirm: Confirm = "manual",
    poll: PollPolicy = DEFAULT_POLL,
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
        poll=poll,
        region=region,
        confirm=confirm,
    )
    for batch in outcome.confirmed_batches:
        logger.info("change order %s: confirmed batch %d", change_order_id[:8], batch)
    fine = outcome.succeeded or outcome.waiting_pipeline_id  # a waiting batch is no failure
    (logger.info if fine else logger.error)("%s", outcome.summary())
    return outcome


# -- internals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spot:
    """Where a pipeline stands: its running (or first unfinished) stage and task."""

    stage: str = ""
    task: str = ""
    done: int = 0
    tasks: int = 0


class _Budget:
    """At most `calls_per_minute` calls in any minute, the last `reserve` of them only near a
    batch's end. A call counts from when its reply came, so the server sees the same spacing."""

    def __init__(self, poll: PollPolicy) -> None:
        self.poll = poll
        self.ends: deque[float] = deque()

    def ready_at(self, keep: int) -> float:
        """When a call may start and still leave `keep` of the minute's calls unspent."""
        now = time.monotonic()
        while self.ends and self.ends[0] <= now - self.poll.minute_seconds:
            self.ends.popleft()
        limit = self.poll.calls_per_minute - keep
        if len(self.ends) < limit:
            return now
        return self.ends[len(self.ends) - limit] + self.poll.minute_seconds

    def ready(self, near: bool) -> bool:
        return self.ready_at(0 if near else self.poll.reserve) <= time.monotonic()

    def due(self, now: float, wanted: float, near: tuple[float, float] | None) -> float:
        """The first moment from `wanted` a poll fits: within `near` (a batch's end, give or
        take) the reserve may be spent, and a later `wanted` is brought forward to its start."""
        if near is None:
            return max(wanted, self.ready_at(self.poll.reserve))
        start, end = near
        wanted = min(wanted, start) if start > now else wanted
        far = max(wanted, self.ready_at(self.poll.reserve))
        if far <= start:
            return far
        close = max(wanted, start, self.ready_at(0))
        return close if close <= end and close < far else far

    def call(self, keep: int, fn: Callable[..., T], *args: Any) -> T:
        time.sleep(max(0.0, self.ready_at(keep) - time.monotonic()))
        try:
            return fn(*args)
        finally:
            self.ends.append(time.monotonic())


class _Pace:
    """The running batch's estimated end (monotonic seconds), from SAE's stamps: its StartTime
    and UpdateTime (epoch ms) over the tasks it finished, times the tasks left."""

    def __init__(self) -> None:
        self.task_seconds: float | None = None
        self.end: float | None = None

    def update(self, pipeline: Any, spot: _Spot) -> None:
        start = float(pipeline.start_time or 0) / 1000
        moved = float(pipeline.update_time or 0) / 1000
        if spot.done and moved > start > 0:
            self.task_seconds = (moved - start) / spot.done
        since = max(start, moved)
        if self.task_seconds is None or not spot.tasks or since <= 0:
            self.end = None
            return
        end = since + self.task_seconds * (spot.tasks - spot.done)
        self.end = end - time.time() + time.monotonic()

    def window(self, poll: PollPolicy) -> tuple[float, float] | None:
        """From the first tight poll to the last, around the estimated end."""
        if self.end is None:
            return None
        first = self.end + poll.settle_seconds
        first -= poll.initial_seconds * int(poll.near_end_seconds // poll.initial_seconds)
        return first, self.end + 2 * poll.near_end_seconds

    def next_near(self, now: float, poll: PollPolicy) -> float:
        """The next tight poll: on the grid of `initial_seconds` through the estimate + settle."""
        window = self.window(poll)
        assert window is not None
        steps = math.floor((now + poll.initial_seconds / 2 - window[0]) / poll.initial_seconds)
        return window[0] + (steps + 1) * poll.initial_seconds

    def near(self, now: float, poll: PollPolicy) -> bool:
        window = self.window(poll)
        return window is not None and window[0] <= now <= window[1]


def describe_order(sae: Any, change_order_id: str) -> Any:
    """DescribeChangeOrder's Data (`sae` is an SAE client)."""
    request = sae_models.DescribeChangeOrderRequest(change_order_id=change_order_id)
    return call("sae:DescribeChangeOrder", sae.describe_change_order, request).body.data


def _confirm_batch(sae: Any, budget: _Budget, change_order_id: str, pipeline_id: str) -> bool:
    """Start the waiting batch; False when it was no longer waiting (confirmed meanwhile).

    A refusal is judged by reading the order again, not by its code: SAE answers the generic
    `InvalidParameter.WithMessage` for many faults. Only an order that no longer waits on this
    batch means someone else confirmed it; otherwise the refusal stands.
    """
    request = sae_models.ConfirmPipelineBatchRequest(pipeline_id=pipeline_id, confirm=True)
    try:
        budget.call(0, call, "sae:ConfirmPipelineBatch", sae.confirm_pipeline_batch, request)
    except CloudError:
        order = budget.call(0, describe_order, sae, change_order_id)
        waiting = str(order.current_pipeline_id or "") == pipeline_id
        if int(order.status or 0) == WAIT_CONFIRM and waiting:
            raise
        return False
    return True


def confirm_batch(creds_a: AlibabaCloudCredentials, change_order_id: str, pipeline_id: str) -> bool:
    """ConfirmPipelineBatch for a batch a person confirmed; False when it no longer waited."""
    sae = creds_a.get_client("sae")
    return _confirm_batch(sae, _Budget(DEFAULT_POLL), change_order_id, pipeline_id)


def abort_change_order(creds_a: AlibabaCloudCredentials, change_order_id: str) -> None:
    """AbortChangeOrder (no rollback); a retry after a lost reply finds the order aborted."""
    sae = creds_a.get_client("sae")
    request = sae_models.AbortChangeOrderRequest(change_order_id=change_order_id)

    def send() -> str:
        sae.abort_change_order(request)
        return change_order_id

    def landed() -> str | None:
        aborted = int(describe_order(sae, change_order_id).status or 0) == ABORTED
        return change_order_id if aborted else None

    write_once("sae:AbortChangeOrder", send, landed=landed)


def _describe_pipeline(sae: Any, pipeline_id: str) -> Any:
    request = sae_models.DescribePipelineRequest(pipeline_id=pipeline_id)
    return call("sae:DescribePipeline", sae.describe_pipeline, request).body.data


def _locate(pipeline: Any) -> _Spot:
    stages = list(pipeline.stage_list or [])
    tasks = [t for s in stages for t in s.task_list or []]
    done = sum(1 for t in tasks if t.status == SUCCESS)
    for stage in stages:
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
        )
    return _Spot(done=done, tasks=len(tasks))


def _outcome(
    sae: Any,
    budget: _Budget,
    order: Any,
    progress: Progress,
    pipelines: list[Any],
    *,
    timed_out: bool = False,
    abnormal: bool = False,
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
        abnormal=abnormal,
    )
    if progress.status not in FAILURES and not abnormal:
        return outcome
    index, pipeline_id = next(
        ((i, p.pipeline_id) for i, p in enumerate(pipelines) if p.status in FAILURES),
        (progress.batch - 1, order.current_pipeline_id),
    )
    if not pipeline_id:
        return outcome
    for stage in budget.call(0, _describe_pipeline, sae, str(pipeline_id)).stage_list or []:
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
