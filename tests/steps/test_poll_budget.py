"""Following a longer change order keeps to the follow's SAE call budget and still notices the end.

SAE allows 60 OpenAPI calls a minute per user; a follow spends at most
`PollPolicy.calls_per_minute` of them in any minute. Checked from the sandbox's request log
(server arrival times), not from the client's own clock.
"""

from __future__ import annotations

from typing import Any

from bench.polling import peak_per_minute
from sandbox.testing import SandboxAdmin
from tasks.change_order import DEFAULT_POLL, Progress, follow_change_order
from tests.support.clients import SdkFactory
from tests.support.sae_setup import create_app, ready_cross_account
from tests.support.worlds import FAST_TIMING

ORDER_SECONDS = 20.0


def test_a_20s_order_is_followed_within_the_call_budget_and_its_end_is_noticed(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory, fast_admin: SandboxAdmin
) -> None:
    role_arn = ready_cross_account(fast_sdk)
    fast_admin.set_timing(change_order_seconds=ORDER_SECONDS)
    try:
        _, order_id = create_app(fast_sdk, role_arn)
        seen: list[Progress] = []
        outcome = follow_change_order(
            fast_creds["app"], order_id, timeout_seconds=60, on_progress=seen.append
        )
    finally:
        fast_admin.set_timing(change_order_seconds=FAST_TIMING["change_order_seconds"])
    assert outcome.succeeded, outcome.summary()

    order = fast_admin.state()["app"]["cn-hangzhou"]["sae_change_order"][order_id]
    created, ended = float(order["created_at"]), float(order["cursor"])
    sae = [e for e in fast_admin.requests() if e["product"] == "sae"]
    following = [
        e for e in sae if e["received_at"] > created and e["action"] != "CreateApplication"
    ]
    assert {e["action"] for e in following} == {"DescribeChangeOrder", "DescribePipeline"}
    # the budget holds in every window of the policy's minute (here the whole order)...
    assert peak_per_minute(following, DEFAULT_POLL.minute_seconds) <= DEFAULT_POLL.calls_per_minute
    # ...and DescribePipeline is read when the order moved, not on every poll
    pipelines = [e for e in following if e["action"] == "DescribePipeline"]
    polls = [e for e in following if e["action"] == "DescribeChangeOrder"]
    assert len(pipelines) < len(polls)
    # the end is noticed by the first poll after it, and nothing is polled after that
    assert sum(1 for e in polls if e["received_at"] >= ended) == 1
    assert all(e["received_at"] < ended for e in pipelines)

    # the progress line still says where the order is, task by task, up to done
    tasks = [(p.stage, p.task) for p in seen if p.task]
    assert ("Deploy", "Pull image") in tasks and ("Traffic", "Switch traffic") in tasks
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1].line().startswith("batch 1 of 1") and seen[-1].state == "succeeded"
