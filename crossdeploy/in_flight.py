"""What this process is doing right now, in words ("apply whitelist", "follow the change order"),
so an interrupt can say where it cut the run off (cli/interrupt.py reads it when the signal
arrives, before the run unwinds)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_doing: Counter[str] = Counter()


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Mark `what` as in progress for the block (any thread; the same thing twice counts twice)."""
    with _lock:
        _doing[what] += 1
    try:
        yield
    finally:
        with _lock:
            _doing[what] -= 1
            if _doing[what] <= 0:
                del _doing[what]


def snapshot() -> list[str]:
    """Everything in progress now, in the order it started."""
    with _lock:
        return list(_doing)
