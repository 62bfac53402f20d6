"""Sandbox time: the wall clock plus an offset that `POST /_sandbox/clock` advances.

A test ages the sandbox's world instantly instead of sleeping: everything the sandbox decides by
its own time reads `Clock.now` (STS tokens and OIDC tokens expiring, change orders and ACR
endpoint transitions finishing, temporary registry logins, creation times). What a client's clock
decides is left on the wall clock: the ±15 min skew of a request's signed timestamp and the nonce
window compare with the client's time, which a test cannot advance; the request log's server
times and the fault windows measure real time.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Epoch seconds in the sandbox's world."""
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the world's time forward (never back: tokens and orders only age); the offset."""
        if seconds < 0:
            raise ValueError("advance_seconds must be >= 0 (the sandbox's time never goes back)")
        with self._lock:
            self._offset += seconds
            return self._offset

    def reset(self) -> None:
        """Back to the wall clock, with the world's initial state (`Sandbox.reset`)."""
        with self._lock:
            self._offset = 0.0
