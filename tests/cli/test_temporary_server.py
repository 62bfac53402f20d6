"""The CLI's temporary Prefect server: the runs it serves send no heartbeats (nobody could watch
them once the server stops with the CLI, and Prefect's sync engine waits up to a second for its
heartbeat thread at the end of every run)."""

from __future__ import annotations

import time
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventResourceFilter
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.temporary_server import prefect_api

HEARTBEAT = "prefect.flow-run.heartbeat"
EVENTS_WITHIN = 30.0
"""Seconds for the server's event persister to store the run's events (it flushes every few)."""


@flow
def nothing() -> None:
    """An empty flow run: all it sends is Prefect's own."""


def events_of(run_id: UUID) -> list[str]:
    """The names of the events stored about the flow run, once its Completed event is there."""
    resource = EventResourceFilter(id=[f"prefect.flow-run.{run_id}"])
    deadline = time.monotonic() + EVENTS_WITHIN
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(filter=EventFilter(resource=resource), limit=50)
            names = [e.event for e in page.events]
            if "prefect.flow-run.Completed" in names or time.monotonic() > deadline:
                return names
            time.sleep(0.5)


def test_runs_on_the_temporary_server_send_no_heartbeats() -> None:
    said: list[str] = []
    with temporary_settings(restore_defaults={PREFECT_API_URL}), prefect_api(said.append):
        state = nothing(return_state=True)
        EventsWorker.drain_all(timeout=10)
        run_id = state.state_details.flow_run_id
        assert run_id is not None
        names = events_of(run_id)

    assert said and said[0].startswith("Started a temporary Prefect server"), said
    assert state.is_completed()
    assert "prefect.flow-run.Completed" in names, names  # its events were stored
    assert HEARTBEAT not in names, names
