"""A real Prefect server as a child process that a test can stop, start and restart.

`PrefectServer` runs `prefect server start` on a free loopback port with its own PREFECT_HOME
(and so its own SQLite database) and the given settings; with `tls=(certfile, keyfile)` it runs
the same server app under uvicorn over HTTPS (`prefect server start` has no TLS option). A
restart keeps the port and the database, and loses what the server keeps only in memory
(concurrency leases by default). `api()` points this process's Prefect client at it; `serving()`
(for a module fixture) also hands Prefect's process-wide log and event workers over to it and
back, so flows run here report to this server and later tests' flows to theirs.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_URL, temporary_settings

from tests.support.processes import free_port, stop_group

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90.0


class PrefectServer:
    """`prefect server start` in its own process group, output to `home/server.log`."""

    def __init__(
        self,
        home: Path,
        settings: dict[str, str] | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.tls = tls
        self.ca_file = ca_file
        scheme = "https" if tls else "http"
        self.api_url = f"{scheme}://127.0.0.1:{self.port}/api"
        self.log = home / "server.log"
        self.settings = settings or {}
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT_API_URL": self.api_url,
                "PYTHONUNBUFFERED": "1",
                **self.settings,
            }
        )
        return env

    def _args(self) -> list[str]:
        if self.tls is None:
            prefect = str(BIN / "prefect")
            return [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        certfile, keyfile = self.tls
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lifespan",
            "on",
            "--ssl-certfile",
            str(certfile),
            "--ssl-keyfile",
            str(keyfile),
        ]

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self._args(),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        verify = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.popen is not None and self.popen.poll() is None, self.tail()
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2, verify=verify).is_success:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the Prefect server did not become healthy\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM the server's process group (SIGKILL after 10 s) and wait for it."""
        if self.popen is None:
            return
        stop_group(self.popen)
        self.popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- Prefect server log (tail) ---\n{text[-chars:]}"

    def variable(
        self, name: str, timeout: float, alive: Callable[[], bool] = lambda: True
    ) -> dict[str, Any]:
        """The value of the Variable `name` once someone has written it (an app lock's holder
        record), read over plain HTTP; looked for while `alive()` (the writer still runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            answer = httpx.get(f"{self.api_url}/variables/name/{name}", timeout=5)
            if answer.is_success:
                value: dict[str, Any] = answer.json()["value"]
                return value
            time.sleep(0.05)
        raise AssertionError(f"nobody took {name}")

    @contextmanager
    def api(self) -> Iterator[None]:
        """This process's Prefect client settings pointed at this server (context-local)."""
        updates: dict[Any, Any] = {PREFECT_API_URL: self.api_url}
        if self.ca_file is not None:
            updates[PREFECT_API_SSL_CERT_FILE] = str(self.ca_file)
        with temporary_settings(updates=updates):
            yield

    @contextmanager
    def serving(self) -> Iterator[PrefectServer]:
        """Started for the block; Prefect's events worker (one per process, bound to the server
        of the context that first used it) flushed before and after, logs flushed after."""
        EventsWorker.drain_all(timeout=10)
        with self:
            try:
                yield self
            finally:
                with self.api():
                    APILogWorker.drain_all(timeout=10)
                    EventsWorker.drain_all(timeout=10)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
