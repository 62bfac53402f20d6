"""SAE's OpenAPI quota as Prefect rate limits: every flow's SAE calls take slots, polling included.

SAE allows 60 OpenAPI calls per minute per account ("单用户一分钟60次API调用"; more are refused
with `Throttling.User`). Every flow (deploy, image-push deploy, fleet, reconcile, teardown) takes
one slot of a Prefect global concurrency limit with slot decay before every SAE call (and every
retry of one), one limit per account and region, named `sae-api:<uid>:<region>`; flows running
at the same time for the same account share it, whichever process runs them.

The limit is the operator's: a run creates it when it is missing (sized from `Quota`, SAE's 60 a
minute unless a fleet is given another) and otherwise leaves it exactly as set, size, decay and
active flag included. A deactivated limit lets every call through (Prefect's server grants slots of
an inactive limit at once), so deactivating it is how an operator lifts the
pacing. How many slots a round trip takes is read from the limit's own size and decay.

A limit with room for `burst` slots that decay at `rate` slots per second admits at most
`burst + rate * window` calls in any window, so both are derived from the quota to keep that sum
under `calls`: `burst` is a tenth of it (at least 1) and the rest is spread over the window plus
one second of slack (for the time between taking a slot and the call reaching SAE). A steady
fleet under SAE's 60 calls a minute therefore runs at about 89 % of the quota bound, never above.

Each round trip to the Prefect API costs time (milliseconds; more when its SQLite database is
busy), and a process makes one at a time per limit, so a round trip takes a slot for
every call of the process then waiting for one (at least `RateLimit.batch`, as many as free up in
half a second; at most the limit's size) and hands them out: one round trip serves a whole
fleet's waiting calls. A slot not used within half a second of being taken is dropped, which
keeps the bound above (the other half second of the slack covers the way to SAE).

`Quota.apps_in_flight` sizes a fleet's parallelism from the quota: enough apps at once that
their calls (about CALLS_PER_APP each, polling included) can use the whole window's budget.

`paced(uid, region)` is what a flow wraps its work in once it knows account A's uid: every
`crossdeploy.cloud.call` made in it (Prefect task runners copy the context into the tasks
submitted in it) takes slots of that account's limit in that region. Inside a context already
paced by the same limit (a deploy subflow of a paced flow) it adds nothing, so no call takes two
slots; `limited(limit)` is the same for a limit already ensured (the fleet's tasks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus

import httpx
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from crossdeploy.cloud import throttled_by
from crossdeploy.prefect_api import patiently, quick_client

SLACK_SECONDS = 1.0
HOLD_SECONDS = 0.5
"""How long a slot taken ahead (in a batch) may wait for its call; less than the slack."""
CALLS_PER_APP = 6
"""SAE calls a fleet app makes: inspect, deploy, follow (at least one poll) and verify."""
MAX_IN_FLIGHT = 32
"""Apps deployed at once at most (threads of the fleet's pool), whatever the quota: each app in
flight also writes its ledger and task runs to the Prefect API, which slows down past that."""
PRODUCT_PREFIX = "sae:"
"""Only SAE calls count against the quota (RAM, VPC, ACR and STS have their own)."""


def _batch(size: int, decay_per_second: float) -> int:
    """Slots taken per Prefect round trip: those that free up in HOLD_SECONDS, within the size."""
    return max(1, min(size, int(decay_per_second * HOLD_SECONDS)))


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
        return max(self.calls - self.burst, 1) / (self.window_seconds + SLACK_SECONDS)

    @property
    def batch(self) -> int:
        """Slots taken per Prefect round trip: those that free up in HOLD_SECONDS."""
        return _batch(self.burst, self.decay_per_second)

    @property
    def apps_in_flight(self) -> int:
        """Apps at once whose calls can use a whole window's budget: calls / CALLS_PER_APP."""
        return max(1, min(MAX_IN_FLIGHT, -(-self.calls // CALLS_PER_APP)))

    @property
    def calls_per_second(self) -> float:
        """The quota bound, for comparing a run's throughput with it."""
        return self.calls / self.window_seconds


SAE_QUOTA = Quota()
"""SAE's published quota: 60 OpenAPI calls a minute per account."""


@dataclass(frozen=True)
class RateLimit:
    """A Prefect rate limit and how many of its slots a process takes per round trip: at least
    `batch`, one per waiting call up to `most` (the limit's size)."""

    name: str
    batch: int = 1
    most: int = 1

    def occupy(self, waiting: int) -> int:
        return max(self.batch, min(self.most, waiting))

    @classmethod
    def of(cls, limit: GlobalConcurrencyLimitResponse) -> RateLimit:
        """Sized from the limit as it is on the server (the operator may have changed it)."""
        size = max(1, limit.limit)
        return cls(limit.name, _batch(size, limit.slot_decay_per_second or 0.0), size)


def limit_name(uid: str, region: str) -> str:
    return f"sae-api:{uid}:{region}"


def ensure_limit(name: str, quota: Quota = SAE_QUOTA) -> RateLimit:
    """The rate limit as it is, created from `quota` if missing; an existing one is left alone."""

    def ensure() -> GlobalConcurrencyLimitResponse:
        with quick_client() as client:
            try:
                return client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                pass
            create = GlobalConcurrencyLimitCreate(
                name=name, limit=quota.burst, slot_decay_per_second=quota.decay_per_second
            )
            with suppress(ObjectAlreadyExists):  # created meanwhile by another run: theirs stands
                client.create_global_concurrency_limit(create)
            return client.read_global_concurrency_limit_by_name(name)

    return RateLimit.of(patiently(ensure))


def set_limit(name: str, quota: Quota, *, active: bool = True) -> None:
    """Create or reset the limit to `quota`, no slot taken: what an operator does with `prefect
    global-concurrency-limit create/update`. Flows never call it (benchmarks and tests do)."""
    with quick_client() as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            create = GlobalConcurrencyLimitCreate(
                name=name,
                limit=quota.burst,
                slot_decay_per_second=quota.decay_per_second,
                active=active,
            )
            client.create_global_concurrency_limit(create)
            return
        update = GlobalConcurrencyLimitUpdate(
            limit=quota.burst,
            slot_decay_per_second=quota.decay_per_second,
            active=active,
            active_slots=0,  # slots taken under the old size would take long to decay
        )
        client.update_global_concurrency_limit(name, update)


class LimitMissingError(RuntimeError):
    """The rate limit was deleted while a run was pacing its calls by it."""


def occupy_slots(name: str, slots: int) -> None:
    """Take `slots` slots of the rate limit `name`, waiting as long as the server says to.

    Prefect's own `rate_limit` asks through Prefect's client, which sleeps 2, 4, 8... seconds on
    a busy SQLite server's 503: measured, that put about 2 s into one SAE call in three. This asks
    through `quick_client` (the same POST /v2/concurrency_limits/increment, the same 423 +
    Retry-After answer when the limit is full). An inactive limit grants at once."""
    with quick_client() as client:
        while True:
            try:
                granted = client.increment_concurrency_slots(
                    names=[name], slots=slots, mode="rate_limit"
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != HTTPStatus.LOCKED:
                    raise
                time.sleep(float(exc.response.headers.get("Retry-After", 1.0)))
                continue
            if not granted.json():
                raise LimitMissingError(
                    f"the Prefect rate limit {name!r} was deleted during the run; a new run "
                    "creates it again (or an operator can: prefect global-concurrency-limit create)"
                )
            return


@dataclass
class _Taken:
    """Slots this process took ahead, by the time each must be used by, and the calls waiting."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    until: deque[float] = field(default_factory=deque)
    waiting: int = 0


_taken: dict[str, _Taken] = {}
_taken_lock = threading.Lock()


def take_slot(limit: RateLimit) -> None:
    """Block until a slot of the limit is ours (from this process's batch, or a new batch sized
    to the calls waiting)."""
    with _taken_lock:
        taken = _taken.setdefault(limit.name, _Taken())
        taken.waiting += 1
    served = False
    try:
        with taken.lock:
            now = time.monotonic()
            while taken.until and taken.until[0] < now:
                taken.until.popleft()
            if not taken.until:
                with _taken_lock:
                    occupy = limit.occupy(taken.waiting)
                patiently(lambda: occupy_slots(limit.name, occupy))
                taken.until.extend([time.monotonic() + HOLD_SECONDS] * occupy)
            taken.until.popleft()
            with _taken_lock:  # no longer waiting before the next batch is sized
                taken.waiting -= 1
            served = True
    finally:
        if not served:
            with _taken_lock:
                taken.waiting -= 1


def _slot_taker(limit: RateLimit) -> Callable[[str], None]:
    def take(action: str) -> None:
        if action.startswith(PRODUCT_PREFIX):
            take_slot(limit)

    return take


_current: ContextVar[RateLimit | None] = ContextVar("crossdeploy_sae_limit", default=None)


@contextmanager
def limited(limit: RateLimit) -> Iterator[None]:
    """Every SAE call made in this context first takes a slot of the rate limit."""
    token = _current.set(limit)
    try:
        with throttled_by(_slot_taker(limit)):
            yield
    finally:
        _current.reset(token)


@contextmanager
def paced(uid: str, region: str, quota: Quota = SAE_QUOTA) -> Iterator[RateLimit]:
    """Every SAE call made in this context takes a slot of account `uid`'s limit in `region`
    (created from `quota` if missing). Within a context of the same limit, nothing is added."""
    current = _current.get()
    name = limit_name(uid, region)
    if current is not None and current.name == name:
        yield current
        return
    limit = ensure_limit(name, quota)
    with limited(limit):
        yield limit
