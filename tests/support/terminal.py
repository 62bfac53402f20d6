"""The crossdeploy command in a pseudo-terminal, as a person runs it: its whole output (Prefect's
log lines included), its exit code, and Ctrl-C or SIGTERM sent once a line shows up."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CROSSDEPLOY = str(Path(sys.executable).with_name("crossdeploy"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
INTERRUPT = b"\x03"
"""The terminal's interrupt character (VINTR): the line discipline sends SIGINT to the whole
foreground process group."""


@dataclass(frozen=True)
class Ended:
    output: str
    exit_code: int
    seconds_after_signal: float | None
    group: int


def crossdeploy_in_terminal(
    args: list[str], *, env: dict[str, str], signal_at: str | None = None, how: str = "ctrl-c"
) -> Ended:
    """Run the CLI in a pseudo-terminal; once `signal_at` shows up in its output, press Ctrl-C
    (`how="ctrl-c"`) or send SIGTERM to it (`how="sigterm"`, as `kill` does)."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session leader with the terminal as its controlling one
        os.execve(CROSSDEPLOY, [CROSSDEPLOY, *args], env)  # noqa: S606 (our own command)
    output, sent = b"", None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not chunk:
                break
            output += chunk
        if signal_at is not None and sent is None and signal_at.encode() in output:
            sent = time.monotonic()
            if how == "ctrl-c":
                os.write(terminal, INTERRUPT)
            else:
                os.kill(pid, signal.SIGTERM)
    else:
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    took = None if sent is None else time.monotonic() - sent
    text = ANSI.sub("", output.decode(errors="replace").replace("\r\n", "\n"))
    text = text.replace("^C", "")  # the terminal's echo of the interrupt character
    return Ended(text, os.waitstatus_to_exitcode(status), took, pid)
