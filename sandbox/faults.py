"""Fault injection, set through `POST /_sandbox/faults`: errors, latency, throttling, lost replies.

A rule matches by product and action (`*` for any) and optionally by account name. Kinds:
- `error` (+ `status`, `message`): answer with that error instead of running the call, `times`
  times (then the rule is spent) or with `probability`, or always;
- `latency_ms`: delay matching calls;
- `throttle_per_minute`: per account, at most N matching calls in any 60 s window (or in any
  `window_seconds`, which shortens the minute for tests); the rest get `Throttling.User`. SAE's
  documentation says only "单用户一分钟60次API调用" (60 API calls a minute per user), not how the
  minute is counted, so the sandbox takes the strictest reading: a sliding window, closed at
  both ends (a call exactly one window after another still counts it), of the calls let through;
- `lose_response`: run the call (its writes commit) and then answer 503, as a reply lost in
  transit would look to the client;
- `advance_clock_seconds`: move the sandbox clock (sandbox/clock.py) forward just before the
  matching call runs, its caller already authenticated: a test ages tokens and change orders at
  an exact point of a flow, where `POST /_sandbox/clock` from another thread could land while a
  request signed with a token of the old time is on its way.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.errors import ApiError, throttled


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = "*"
    action: str = "*"
    account: str = "*"
    error: str | None = None
    status: int = Field(default=503, ge=400, le=599)
    message: str = ""
    times: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    throttle_per_minute: int | None = Field(default=None, ge=1)
    window_seconds: float = Field(default=60.0, gt=0, le=3600)
    lose_response: bool = False
    advance_clock_seconds: float = Field(default=0.0, ge=0, le=366 * 86400)

    @model_validator(mode="after")
    def _one_effect(self) -> FaultRule:
        effects = [
            self.error is not None,
            self.latency_ms > 0,
            self.throttle_per_minute is not None,
            self.lose_response,
            self.advance_clock_seconds > 0,
        ]
        if sum(effects) != 1:
            raise ValueError(
                "a rule has exactly one of error, latency_ms, throttle_per_minute, lose_response,"
                " advance_clock_seconds"
            )
        return self

    def matches(self, product: str, action: str, account: str) -> bool:
        return (
            self.product in ("*", product)
            and self.action in ("*", action)
            and self.account in ("*", account)
        )


@dataclass
class _Active:
    rule: FaultRule
    remaining: int | None
    windows: dict[str, deque[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    latency_s: float = 0.0
    error: ApiError | None = None
    lose_response: bool = False
    advance_clock_s: float = 0.0


class Faults:
    def __init__(self) -> None:
        self._rules: list[_Active] = []
        self._lock = threading.Lock()

    def set(self, rules: list[FaultRule]) -> None:
        """Add rules (they stack with earlier ones until cleared)."""
        with self._lock:
            self._rules.extend(_Active(rule, rule.times) for rule in rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def describe(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {**a.rule.model_dump(exclude_defaults=True), "remaining": a.remaining}
                for a in self._rules
            ]

    def latency(self, product: str, action: str, account: str) -> float:
        with self._lock:
            return (
                sum(
                    a.rule.latency_ms
                    for a in self._rules
                    if a.rule.latency_ms and a.rule.matches(product, action, account)
                )
                / 1000.0
            )

    def judge(self, product: str, action: str, account: str) -> Verdict:
        """Decide the fate of one authenticated call; consumes counted rules."""
        now = time.monotonic()
        with self._lock:
            for active in self._rules:
                rule = active.rule
                if not rule.matches(product, action, account):
                    continue
                if rule.throttle_per_minute is not None:
                    window = active.windows.setdefault(account, deque())
                    while window and window[0] < now - rule.window_seconds:
                        window.popleft()
                    if len(window) >= rule.throttle_per_minute:
                        return Verdict(error=throttled())
                    window.append(now)
                    continue
                if rule.error is None and not rule.lose_response and not rule.advance_clock_seconds:
                    continue
                if active.remaining == 0:
                    continue
                if rule.probability is not None and random.random() >= rule.probability:
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                if rule.lose_response:
                    return Verdict(lose_response=True)
                if rule.advance_clock_seconds:
                    return Verdict(advance_clock_s=rule.advance_clock_seconds)
                assert rule.error is not None
                return Verdict(
                    error=ApiError(
                        rule.status, rule.error, rule.message or f"Injected fault: {rule.error}."
                    )
                )
        return Verdict()
