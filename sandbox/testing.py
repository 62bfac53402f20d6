"""Run a sandbox cloud in a child process and talk to it, for tests and the demo.

`SandboxProcess` starts `crossdeploy sandbox serve` exactly as a user would, waits for its
`sandbox listening on ...` line (after `sandbox tls listening on ...` when asked for HTTPS), and
can stop it gracefully or with SIGKILL. `SandboxAdmin` wraps
the `/_sandbox/` routes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from sandbox.tls import TLS_LISTENING_PREFIX

LISTENING_PREFIX = "sandbox listening on "


class SandboxProcess:
    def __init__(
        self,
        *,
        world: Path | None = None,
        state: Path | None = None,
        port: int = 0,
        startup_timeout: float = 30.0,
        tls_ca_out: Path | None = None,
    ) -> None:
        self.world = world
        self.state = state
        self.port = port
        self.startup_timeout = startup_timeout
        self.tls_ca_out = tls_ca_out
        """When set, the sandbox also serves HTTPS with a test CA written there (`https_url`)."""
        self.url = ""
        self.https_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: list[str] = []

    def start(self) -> str:
        exe = shutil.which("crossdeploy", path=str(Path(sys.executable).parent))
        command = [exe] if exe else [sys.executable, "-m", "cli.main"]
        command += ["sandbox", "serve", "--port", str(self.port)]
        if self.world is not None:
            command += ["--world", str(self.world)]
        if self.state is not None:
            command += ["--state", str(self.state)]
        if self.tls_ca_out is not None:
            command += ["--tls-ca-out", str(self.tls_ca_out)]
        self._proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self._read_line_with_timeout()
        if self.tls_ca_out is not None and line.startswith(TLS_LISTENING_PREFIX):
            self.https_url = line[len(TLS_LISTENING_PREFIX) :].split()[0]
            line = self._read_line_with_timeout()
        if not line.startswith(LISTENING_PREFIX):
            self.kill()
            raise RuntimeError(f"sandbox did not start: {line!r} {''.join(self._stderr)[-2000:]}")
        self.url = line[len(LISTENING_PREFIX) :].strip()
        return self.url

    def _read_line_with_timeout(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(self.startup_timeout)
        return result[0] if result else ""

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    @property
    def endpoint(self) -> str:
        """`host:port`, the form the SDK's `Config.endpoint` takes."""
        return self.url.removeprefix("http://")

    @property
    def https_endpoint(self) -> str:
        """`host:port` of the HTTPS listener: `sts_endpoint` for `alibabacloud-credentials`."""
        return self.https_url.removeprefix("https://")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SandboxAdmin:
    """The sandbox's own routes (never part of an Alibaba API)."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=30)

    def health(self) -> bool:
        return bool(self._http.get("/_sandbox/health").json().get("ok"))

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._http.get("/_sandbox/requests").json()
        return result

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["write"]]

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._http.get("/_sandbox/state").json()
        return result

    def set_faults(self, *rules: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post("/_sandbox/faults", json={"rules": list(rules)})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def faults(self) -> list[dict[str, Any]]:
        """The rules in force, each with the `remaining` count of a rule given `times`."""
        response = self._http.get("/_sandbox/faults")
        response.raise_for_status()
        rules: list[dict[str, Any]] = response.json()["rules"]
        return rules

    def clear_faults(self) -> None:
        self._http.delete("/_sandbox/faults").raise_for_status()

    def timing(self) -> dict[str, float]:
        result: dict[str, float] = self._http.get("/_sandbox/timing").json()
        return result

    def set_timing(self, **timing: float) -> dict[str, float]:
        """E.g. `set_timing(change_order_seconds=20)`: change orders started afterwards."""
        response = self._http.post("/_sandbox/timing", json=timing)
        response.raise_for_status()
        result: dict[str, float] = response.json()
        return result

    def advance_clock(self, seconds: float) -> float:
        """Age the sandbox's world by `seconds` at once (sandbox/clock.py says what ages); the
        clock's total offset. `reset` sets it back to the wall clock."""
        response = self._http.post("/_sandbox/clock", json={"advance_seconds": seconds})
        response.raise_for_status()
        offset: float = response.json()["offset_seconds"]
        return offset

    def reset(self) -> None:
        self._http.post("/_sandbox/reset").raise_for_status()

    def close(self) -> None:
        self._http.close()
