"""Manual batch release confirmed in the Prefect UI.

With `rollout.confirm: manual`, a batch waiting to be confirmed (change order status 8) pauses
the deploy's flow run (`pause_flow_run(wait_for_input=BatchDecision)`): the UI's Resume button
offers Confirm or Abort. Confirm sends ConfirmPipelineBatch and the follow goes on; Abort ends
the follow with `refused_batch` set, and the flow aborts the order (flows/diagnosis.py).

The batch can still be confirmed (or the order aborted) in the SAE console: while the run is
paused, a watcher reads the order every `WATCH_SECONDS` and resumes the run itself once the batch
no longer waits, so a person never has to answer twice. The pause lasts at most what is left of
`rollout.timeout_seconds`; past it the order is left as it is, as any follow timeout leaves it.

A pause belongs to a flow run, and only the flow's own code may take it: inside a task (a
fleet's apps land in tasks, several at once) the follow keeps waiting for the SAE console.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import replace
from enum import StrEnum
from typing import Literal
from uuid import UUID

from prefect import get_run_logger
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from pydantic import Field

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError
from tasks.change_order import (
    DEFAULT_POLL,
    WAIT_CONFIRM,
    ChangeOrderOutcome,
    PollPolicy,
    confirm_batch,
    describe_order,
    duration,
    follow,
)

logger = logging.getLogger(__name__)

WATCH_SECONDS = 3.0
"""How often a paused run reads its change order (20 calls a minute, SAE's budget for a follow)."""
RESUME_POLL_SECONDS = 2
"""How often the paused run asks the Prefect API whether it was resumed."""

Answer = Literal["confirm", "abort", "moved", "timeout"]


class Decision(StrEnum):
    CONFIRM = "confirm"
    ABORT = "abort"


class BatchDecision(RunInput):
    """The form a paused deploy shows on Resume."""

    decision: Decision = Field(
        default=Decision.CONFIRM,
        title="Next batch",
        description="confirm: release the waiting batch; abort: abort the change order.",
    )


def can_ask() -> bool:
    """True in a flow run's own code (a pause is possible), False in a task or outside Prefect."""
    return FlowRunContext.get() is not None and TaskRunContext.get() is None


def follow_asking(
    creds_a: AlibabaCloudCredentials,
    change_order_id: str,
    *,
    timeout_seconds: float,
    region: str | None,
    label: str,
    poll: PollPolicy = DEFAULT_POLL,
) -> ChangeOrderOutcome:
    """Follow the order (the `follow` task, on `poll`'s schedule), pausing the flow run at each
    waiting batch until a person confirms or aborts it; `label` names the deploy in the form."""
    started = time.monotonic()
    deadline = started + timeout_seconds
    confirmed: list[int] = []
    while True:
        left = max(1.0, deadline - time.monotonic())
        outcome = follow(
            creds_a, change_order_id, timeout_seconds=left, region=region, confirm="ask", poll=poll
        )
        outcome = replace(
            outcome,
            confirmed_batches=(*confirmed, *outcome.confirmed_batches),
            elapsed_seconds=time.monotonic() - started,
        )
        if not outcome.waiting_pipeline_id:
            return outcome
        answer = ask(creds_a, outcome, seconds=deadline - time.monotonic(), label=label)
        if answer == "abort":
            return replace(outcome, waiting_pipeline_id="", refused_batch=outcome.waiting_batch)
        if answer == "timeout":
            elapsed = time.monotonic() - started
            return replace(outcome, waiting_pipeline_id="", timed_out=True, elapsed_seconds=elapsed)
        if answer == "confirm" and confirm_batch(
            creds_a, change_order_id, outcome.waiting_pipeline_id
        ):
            confirmed.append(outcome.waiting_batch)


def ask(
    creds_a: AlibabaCloudCredentials, outcome: ChangeOrderOutcome, *, seconds: float, label: str
) -> Answer:
    """Pause this flow run for a BatchDecision (at most `seconds`); "moved" when the batch went
    on (or the order ended) without it, "timeout" when nobody answered."""
    logger = get_run_logger()
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None, "ask() pauses a flow run"
    batch = f"batch {outcome.waiting_batch} of {outcome.batches}"
    seconds = max(1, int(seconds))
    logger.info(
        "%s: %s waits to be confirmed: Resume this flow run with Confirm or Abort (or confirm it "
        "in the SAE console) within %s: %s",
        label,
        batch,
        duration(seconds),
        outcome.console_url,
    )
    form = BatchDecision.with_initial_data(
        description=(
            f"**{label}**: {batch} of change order `{outcome.change_order_id}` waits to be "
            f"confirmed. **confirm** releases it; **abort** aborts the change order (and rolls "
            f"the app back when the spec says `rollback_on_failure`). "
            f"[SAE console]({outcome.console_url})"
        ),
        decision=Decision.CONFIRM,
    )
    watch = _Watch(creds_a, outcome, context.flow_run.id)
    watch.start()
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=seconds,
            poll_interval=RESUME_POLL_SECONDS,
            key=f"{outcome.change_order_id}-batch-{outcome.waiting_batch}",
        )
    except FlowPauseTimeout:
        logger.warning("%s: %s was not confirmed within %s", label, batch, duration(seconds))
        return "timeout"
    finally:
        watch.stop()
    if watch.moved.is_set():
        logger.info("%s: %s went on outside this run (SAE console)", label, batch)
        return "moved"
    decision = answer.decision
    logger.info("%s: %s: %s (Prefect UI)", label, batch, decision.value)
    return "abort" if decision is Decision.ABORT else "confirm"


class _Watch:
    """While the run is paused: resume it once the batch no longer waits (someone confirmed it,
    or aborted the order, in the SAE console)."""

    def __init__(
        self, creds_a: AlibabaCloudCredentials, outcome: ChangeOrderOutcome, flow_run_id: UUID
    ) -> None:
        self.sae = creds_a.get_client("sae")
        self.outcome = outcome
        self.flow_run_id = flow_run_id
        self.moved = threading.Event()
        self.stopped = threading.Event()
        context = contextvars.copy_context()  # Prefect's settings and client live in contextvars
        self.thread = threading.Thread(
            target=context.run, args=(self._watch,), name="batch-watch", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _watch(self) -> None:
        while not self.stopped.wait(WATCH_SECONDS):
            try:
                order = describe_order(self.sae, self.outcome.change_order_id)
            except CloudError:
                continue
            waiting = int(order.status or 0) == WAIT_CONFIRM and (
                str(order.current_pipeline_id or "") == self.outcome.waiting_pipeline_id
            )
            if waiting:
                continue
            try:
                resume_flow_run(self.flow_run_id, run_input={"decision": Decision.CONFIRM.value})
            except Exception as exc:  # not paused yet, or resumed by a person meanwhile
                logger.debug("not resumed (%s); looking again", type(exc).__name__)
                continue
            self.moved.set()
            return
