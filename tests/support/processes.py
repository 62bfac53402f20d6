"""Child processes the tests start: a child Python run as a user's shell starts it, the
`crossdeploy` command line, a free loopback port for a child to listen on, stopping a child
that runs in a session of its own together with everything it started, a long-running child
logging to a file (a server, a worker) and the runs a worker's log says it started, the
processes that carry a marker in their environment, and waiting for what a child does."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


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


def succeeded(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run a command (`prefect work-pool create ...`) in the repository root; its output, which
    the assertion shows when it exits non-zero."""
    done = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output[-4000:]}"
    return output


class LoggedProcess:
    """A child process in its own session, started in the repository root, output to a log
    file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log (tail) ---\n{self.text()[-chars:]}"

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not print {prefix!r}\n{self.tail()}")

    def stop(self) -> None:
        stop_group(self.popen)


def worker_ran(worker_log: str, flow_run_id: object) -> bool:
    """A Prefect worker's log says it started the flow run: it logs its submission first, and
    then, when another worker of the pool had already taken the run, that it aborted it (two
    workers may both see a run as scheduled)."""
    submitted = f"submitting flow run '{flow_run_id}'" in worker_log
    return submitted and f"Aborted submission of flow run '{flow_run_id}'" not in worker_log


def marked_pids(name: str, value: str) -> list[int]:
    """Processes whose environment carries `name=value` (flow runs a worker started in
    sessions of their own included), this one excepted."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_marked(name: str, value: str) -> None:
    """SIGKILL every process whose environment carries `name=value`."""
    for pid in marked_pids(name, value):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_until(
    what: str, check: Callable[[], T | None], timeout: float, on_fail: str = "", every: float = 0.5
) -> T:
    """`check()`'s first value that is neither None nor False, asked `every` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{on_fail}")
        time.sleep(every)
