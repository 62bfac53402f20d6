"""Child processes the tests start: a child Python run as a user's shell starts it, the
`crossdeploy` command line, a free loopback port for a child to listen on, and stopping a child
that runs in a session of its own together with everything it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from contextlib import suppress
from pathlib import Path


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A child Python as a user's shell starts it: no pytest settings of this session."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def crossdeploy(*args: str) -> list[str]:
    """The `crossdeploy` command installed beside this Python (else `python -m cli.main`)."""
    exe = shutil.which("crossdeploy", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-m", "cli.main", *args]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_group(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group (SIGKILL after 10 s) and wait for the child."""
    if popen.poll() is None:
        _signal_group(popen.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            popen.wait(10)
    _signal_group(popen.pid, signal.SIGKILL)
    if popen.poll() is None:
        popen.wait(5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
