"""The Prefect API the CLI's flows run against: PREFECT_API_URL when set, otherwise a temporary
server of the CLI's own.

Prefect would start that server itself, in the terminal's process group, so Ctrl-C killed it
along with the CLI and the run could neither mark itself over nor release its app lock. Started
here in its own session, the terminal's signals reach the CLI only; the CLI stops the server
once the run has ended (interrupted or not). Its telemetry is off: it would otherwise record a
session in SQLite while the server migrates ("database is locked" tracebacks).

The flow runs it serves send no heartbeats. A heartbeat lets whoever watches a server mark a run
Crashed when its process dies silently; this server dies with the process, so nobody can, and
the CLI itself says how a run ended. They would only cost time: Prefect's sync flow engine
joins its heartbeat thread, which sleeps in whole seconds, so every run lasted at least a second
(an empty flow: 1.06 s with heartbeats, 0.07 s without; a no-op re-deploy 1.07 s and 0.7 s).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import prefect
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

QUIET_SERVER = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "0"}
"""What every temporary server runs with: no telemetry, no UI."""
STOP_SECONDS = 5.0


@contextmanager
def prefect_api(say: Callable[[str], None]) -> Iterator[None]:
    """PREFECT_API_URL as set, or a temporary server of this process's own for the block (`say`
    tells where)."""
    if PREFECT_API_URL.value():
        yield
        return
    port = _free_port()
    server = _start(port)
    try:
        url = f"http://127.0.0.1:{port}/api"
        _wait_healthy(server, url)
        say(f"Started a temporary Prefect server on {url}; it stops when this command ends.")
        with temporary_settings(
            updates={PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ):
            try:
                yield
            finally:
                _deliver_pending()
    finally:
        stop(server)


def _deliver_pending() -> None:
    """The run's last logs and events, sent while the server is still there to take them."""
    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=STOP_SECONDS)


def _start(port: int) -> subprocess.Popen[bytes]:
    """uvicorn serving Prefect's app, as Prefect starts its temporary server, but in a session
    of its own (the terminal's Ctrl-C does not reach it)."""
    env = {
        **os.environ,
        **get_current_settings().to_environment_variables(exclude_unset=True),
        **QUIET_SERVER,
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect.__file__).parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    return subprocess.Popen(command, env=env, start_new_session=True)


def _wait_healthy(server: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the temporary Prefect server exited ({server.returncode})")
            try:
                if client.get(f"{url}/health").status_code == httpx.codes.OK:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the temporary Prefect server at {url} did not start in time")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server (SIGTERM, SIGKILL after STOP_SECONDS); a second Ctrl-C meanwhile does
    not leave it running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server.terminate()
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
