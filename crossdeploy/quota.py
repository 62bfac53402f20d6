"""SAE's OpenAPI quota as Prefect rate limits: a fleet never exceeds it, polling included.

SAE allows 60 OpenAPI calls per minute per account ("单用户一分钟60次API调用"; more are refused
with `Throttling.User`). A fleet deploy takes one slot of a Prefect global concurrency limit
with slot decay before every SAE call (and every retry of one), one limit per account and region,
named `sae-api:<uid>:<region>`; flows running at the same time for the same account share it.

A limit with room for `burst` slots that decay at `rate` slots per second admits at most
`burst + rate * window` calls in any window, so both are derived from the quota to keep that sum
at `calls`: `burst` is a tenth of it (at least 1) and the rest is spread evenly over the window.
A steady fleet therefore runs at 90 % of the quota bound, and never above it.

`limited(name)` attaches the limit to every `crossdeploy.cloud.call` made in its context (Prefect
task runners copy the context into the tasks submitted in it); without it calls are unlimited,
so single deploys are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from crossdeploy.cloud import throttled_by

PRODUCT_PREFIX = "sae:"
"""Only SAE calls count against the quota (RAM, VPC, ACR and STS have their own)."""


@dataclass(frozen=True)
class Quota:
    """At most `calls` SAE calls in any `window_seconds`, per account and region."""

    calls: int = 60
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.calls < 1 or self.window_seconds <= 0:
            raise ValueError(f"a quota needs calls >= 1 and a window > 0, not {self}")

    @property
    def burst(self) -> int:
        """Slots free at once: a tenth of the quota, at least one."""
        return max(1, self.calls // 10)

    @property
    def decay_per_second(self) -> float:
        """Slots freed per second: what the quota leaves after the burst, spread evenly."""
        return max(self.calls - self.burst, 1) / self.window_seconds

    @property
    def calls_per_second(self) -> float:
        """The quota bound, for comparing a run's throughput with it."""
        return self.calls / self.window_seconds


def limit_name(uid: str, region: str) -> str:
    return f"sae-api:{uid}:{region}"


def ensure_limit(name: str, quota: Quota) -> None:
    """Create the rate limit, or set its size and decay to `quota` (idempotent)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            create = GlobalConcurrencyLimitCreate(
                name=name,
                limit=quota.burst,
                slot_decay_per_second=quota.decay_per_second,
                active=True,
            )
            try:
                client.create_global_concurrency_limit(create)
                return
            except ObjectAlreadyExists:
                pass  # created meanwhile by another run: set it below
        update = GlobalConcurrencyLimitUpdate(
            limit=quota.burst, slot_decay_per_second=quota.decay_per_second, active=True
        )
        client.update_global_concurrency_limit(name, update)


def _slot_taker(name: str) -> Callable[[str], None]:
    def take(action: str) -> None:
        if action.startswith(PRODUCT_PREFIX):
            rate_limit(name, strict=True)

    return take


@contextmanager
def limited(name: str) -> Iterator[None]:
    """Every SAE call made in this context first takes a slot of the rate limit `name`."""
    with throttled_by(_slot_taker(name)):
        yield
