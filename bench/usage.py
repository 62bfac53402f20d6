"""CPU time and resident memory of a benchmark run, per process: this one (the flows run in it),
and its child processes by what they are (Prefect's server, sandbox clouds), read from Linux's
/proc. Elsewhere every figure reads 0: the benchmarks' timings do not depend on it.

CPU is user + system time spent during the run (a child started during the run counts from its
start); memory is the largest resident set seen by a sampler every SAMPLE_SECONDS, per process
and for all of them together.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.2
PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _role(pid: int) -> str:
    """`bench`, `prefect` (the API server the harness started), `sandbox`, or `other`."""
    if pid == os.getpid():
        return "bench"
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    words = " ".join(a.decode(errors="replace") for a in argv)
    if "sandbox" in words and "serve" in words:
        return "sandbox"
    if "prefect" in words or "uvicorn" in words:
        return "prefect"
    return "other"


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, resident bytes) of a live process, None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # after the name: state ppid ... utime(14th) stime(15th) ... rss(24th), 1-based in `man proc`
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


def _tree() -> dict[int, tuple[float, int]]:
    """This process and its descendants: CPU seconds and resident bytes each."""
    if not PROC.is_dir():
        return {}
    found: dict[int, tuple[int, float, int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    mine, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, (parent, _, _) in found.items() if parent in mine} - mine
        mine |= more
        grew = bool(more)
    return {pid: found[pid][1:] for pid in mine if pid in found}


@dataclass
class Usage:
    """What a run used: CPU seconds and peak resident MiB by role, and the peak of them all."""

    cpu: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    peak_total_mib: float = 0.0

    def cpu_text(self, per: int = 1) -> str:
        """`total (bench a, prefect b, sandbox c)` CPU seconds, divided by `per`."""
        parts = ", ".join(f"{role} {s / per:.2f}" for role, s in sorted(self.cpu.items()))
        return f"{sum(self.cpu.values()) / per:.2f} ({parts})"

    def memory_text(self) -> str:
        parts = ", ".join(f"{role} {m:.0f}" for role, m in sorted(self.peak_mib.items()))
        return f"{self.peak_total_mib:.0f} ({parts})"


@contextmanager
def measured() -> Iterator[Usage]:
    """Measure the block's CPU and memory; the figures are filled in when it ends."""
    usage = Usage()
    roles: dict[int, str] = {}
    start = _tree()
    last: dict[int, float] = {pid: cpu for pid, (cpu, _) in start.items()}
    first: dict[int, float] = dict(last)
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        tree = _tree()
        total = 0
        by_role: dict[str, int] = {}
        for pid, (cpu, rss) in tree.items():
            role = roles.setdefault(pid, _role(pid))
            first.setdefault(pid, 0.0)  # started during the run: all its CPU counts
            last[pid] = cpu
            by_role[role] = by_role.get(role, 0) + rss
            total += rss
        for role, rss in by_role.items():
            peaks[role] = max(peaks.get(role, 0), rss)
        usage.peak_total_mib = max(usage.peak_total_mib, total / 2**20)

    def sampler() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            sample()

    thread = threading.Thread(target=sampler, name="bench-usage", daemon=True)
    sample()
    thread.start()
    try:
        yield usage
    finally:
        stop.set()
        thread.join()
        sample()
        for pid, cpu in last.items():
            role = roles.setdefault(pid, _role(pid))
            usage.cpu[role] = usage.cpu.get(role, 0.0) + cpu - first.get(pid, 0.0)
        usage.peak_mib = {role: rss / 2**20 for role, rss in peaks.items()}
