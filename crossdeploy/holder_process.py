"""Which process holds the app lock, and whether it is still there.

A flow run killed with SIGKILL and nobody to mark it (no worker) stays Running on the server and
its lease lives on until it expires. Its waiter can tell sooner when it runs on the same machine:
the holder's pid is gone, or was reused by another process (a different start time). "The same
machine" is the hostname, the kernel's boot id and the pid namespace together: containers can
share a hostname (`--network host`) but not a pid namespace, and pids and start times restart
with a boot. Without /proc (not Linux) a process is not identified and the lease decides.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass(frozen=True)
class HolderProcess:
    """A process as the holder record names it."""

    host: str
    """The hostname, what a person reads."""
    machine: str
    """Boot id and pid namespace: where `pid` means this process."""
    pid: int
    started: int
    """Start time in clock ticks after boot (/proc/<pid>/stat field 22): tells a reused pid."""

    def as_record(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "machine": self.machine,
            "pid": self.pid,
            "started": self.started,
        }

    @classmethod
    def from_record(cls, value: object) -> HolderProcess | None:
        """The process a holder record names; None for a record without one (older versions,
        or a holder where /proc is missing)."""
        if not isinstance(value, dict):
            return None
        host, machine, pid, started = (value.get(k) for k in ("host", "machine", "pid", "started"))
        if not (isinstance(host, str) and isinstance(machine, str) and machine):
            return None
        if not (isinstance(pid, int) and isinstance(started, int)):
            return None
        return cls(host, machine, pid, started)


def this_process() -> HolderProcess | None:
    """This process, or None where it cannot be identified (no /proc)."""
    machine = _machine()
    if machine is None:
        return None
    try:
        started = _stat(os.getpid()).started
    except OSError:
        return None
    return HolderProcess(socket.gethostname(), machine, os.getpid(), started)


def gone(holder: HolderProcess) -> bool:
    """True only when `holder` ran on this machine and is no longer running there: no process
    has its pid, or the one that has it started at another time (a zombie counts as gone: it
    runs nothing). A process this user may not look at (/proc mounted with `hidepid`) is not
    taken for gone."""
    if holder.machine != _machine():
        return False
    try:
        stat = _stat(holder.pid)
    except FileNotFoundError:
        return not _exists(holder.pid)
    except OSError:
        return False
    return stat.state in {"Z", "X"} or stat.started != holder.started


@dataclass(frozen=True)
class _Stat:
    state: str
    started: int


def _stat(pid: int) -> _Stat:
    """Fields 3 and 22 of /proc/<pid>/stat. The command name (field 2) may hold spaces and
    parentheses: fields are counted after its closing one."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except ProcessLookupError as exc:  # the process ended while being read
        raise FileNotFoundError(str(pid)) from exc
    fields = text[text.rindex(")") + 2 :].split()
    return _Stat(fields[0], int(fields[19]))


def _exists(pid: int) -> bool:
    """Whether a process has `pid` (another user's one included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _machine() -> str | None:
    """The boot id and this process's pid namespace, or None without /proc."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"
