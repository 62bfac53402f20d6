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
under `calls`: `burst` is the calls of BURST_SECONDS at the quota's rate (at most a tenth of the
quota, at least 1) and the rest is spread over the window plus one second of slack (for the time
between taking a slot and the call reaching SAE). Under SAE's 60 calls a minute that is a burst
of 3 and 57 slots per 61 s: a steady fleet runs at about 93 % of the quota bound (before, a
tenth, 6 and 54: 89 %), never above. Every slot of the burst is one less for the steady rate,
so it is only as large as a single deploy's own bursts need (a no-op re-run's three SAE calls
at once; a fresh deploy's verify, three in a row); a fleet's calls all wait their turn anyway.

How Prefect's server counts decides how close a process comes to that rate. It decays a limit's
active slots as `floor(rate * seconds since the limit's row was last written)`, and every answer
writes the row, a refusal (423) included: a refused ask throws away the decay since the last
write. Sleeping the 423's jittered Retry-After (what Prefect's own client does, and this module
did) asks again too early about half the time, and each early ask starts the decay over;
measured with batches of 6, a fleet at SAE's quota reached 0.69 of the quota so. So a process
keeps its own count of the server's: after each answer, at most how many slots are active
(`_Taken.full`, counted from when the answer arrived, after the server wrote the row, so never
more decay than the server counts), and asks when the slots it wants are free by that count.
Alone on the limit it is refused only when it knew nothing yet (its first grant: it asks again
at once, when a refusal costs nothing, the row having just been written). A refusal means the
limit is full and its decay started over, so the next ask waits `slots / rate`; refused twice
in a row, someone else asks too (another process, or an operator changed the limit), and it
also waits what the server says (Retry-After), which spreads the askers. Measured at SAE's
quota (bench/fleet.py, N = 20): 0.93 of the quota, 0 throttled.

Each round trip to the Prefect API costs time (milliseconds; more when its SQLite database is
busy), and a process makes one at a time per limit, so a round trip takes a slot for
every call of the process then waiting for one (at least `RateLimit.batch`, as many as free up in
half a second; at most the limit's size) and hands them out: one round trip serves a whole
fleet's waiting calls. A slot not used within half a second of being taken is dropped, which
keeps the bound above (the other half second of the slack covers the way to SAE).

A call that comes right after work needing no slot (the deploy flow's app lock, the app's
ledger write, the verify task's start) has its slot asked for ahead (`take_ahead`), so the round
trip runs alongside that work: 60-120 ms each while the server records the run's task runs.

`Quota.apps_in_flight` sizes a fleet's parallelism from the quota: enough apps at once that
their calls (about CALLS_PER_APP each, polling included) can use the whole window's budget.
Measured at SAE's quota, a fleet app makes exactly 6 SAE calls (ListApplications,
CreateApplication, DescribeChangeOrder, DescribeApplicationStatus, ...Groups, ...Instances) and
10 apps in flight keep calls waiting for every slot until the last few apps.

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
BURST_SECONDS = 3.0
"""The burst: the calls of this many seconds at the quota's rate."""
ASK_MARGIN_SECONDS = 0.01
"""Asked again this long after the slots must have decayed: for the server's date arithmetic."""
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
        """Slots free at once: the calls of BURST_SECONDS, at most a tenth of the quota, at
        least one (every slot of the burst is one less for the steady rate)."""
        return max(1, min(self.calls // 10, int(self.calls * BURST_SECONDS / self.window_seconds)))

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
    decay_per_second: float = 0.0
    """The limit's decay as read; 0 when unknown (then a refusal waits what the server says)."""
    active: bool = True
    """An inactive limit grants every ask at once: no need to count."""

    def occupy(self, waiting: int) -> int:
        return max(self.batch, min(self.most, waiting))

    @classmethod
    def of(cls, limit: GlobalConcurrencyLimitResponse) -> RateLimit:
        """Sized from the limit as it is on the server (the operator may have changed it)."""
        size = max(1, limit.limit)
        decay = limit.slot_decay_per_second or 0.0
        return cls(limit.name, _batch(size, decay), size, decay, limit.active)


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
    global-concurrency-limit create/update`. Flows never call it (benchmarks and tests do). This
    process forgets its own count of the limit (what it knew is of the limit as it was), so its
    next call asks at once, as a new process would."""
    _forget(name)
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


def ask_slots(name: str, slots: int) -> float | None:
    """Ask once for `slots` slots of the rate limit `name`: None when granted, else the seconds
    the server says to wait (its 423 Retry-After).

    Through `quick_client`: Prefect's own client sleeps 2, 4, 8... seconds on a busy SQLite
    server's 503 (measured: about 2 s in one SAE call in three). An inactive limit grants at
    once."""
    with quick_client() as client:
        try:
            granted = client.increment_concurrency_slots(
                names=[name], slots=slots, mode="rate_limit"
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != HTTPStatus.LOCKED:
                raise
            return float(exc.response.headers.get("Retry-After", 1.0))
    if not granted.json():
        raise LimitMissingError(
            f"the Prefect rate limit {name!r} was deleted during the run; a new run "
            "creates it again (or an operator can: prefect global-concurrency-limit create)"
        )
    return None


def occupy_slots(name: str, slots: int) -> None:
    """Take `slots` slots of the rate limit `name`, waiting as long as the server says to."""
    while (wait := ask_slots(name, slots)) is not None:
        time.sleep(wait)


@dataclass
class _Taken:
    """One process's side of a limit: slots taken ahead, by the time each must be used by; the
    calls waiting; what it knows of the server's count (`full`: at most that many active slots
    when its last answer came, at monotonic time `at`; None: unknown); refusals in a row; asks,
    refusals and slots dropped unused so far."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    until: deque[float] = field(default_factory=deque)
    waiting: int = 0
    full: int | None = None
    at: float = 0.0
    refused_in_a_row: int = 0
    asked: int = 0
    refused: int = 0
    lapsed: int = 0

    def active_at(self, limit: RateLimit, when: float) -> int | None:
        """At most this many active slots on the server at `when`, if no one else asks: Prefect
        decays `floor(rate * seconds since the row's last write)`, and that write came before
        the answer did (so counting from `at` never counts too much decay)."""
        if self.full is None:
            return None
        decayed = int(limit.decay_per_second * max(0.0, when - self.at))
        return max(0, self.full - decayed)

    def ask_at(self, limit: RateLimit, slots: int) -> float:
        """When `slots` more slots fit within the limit's size (now, when unknown)."""
        active = self.active_at(limit, self.at)
        if active is None or not limit.active or limit.decay_per_second <= 0:
            return 0.0
        missing = active + slots - limit.most
        if missing <= 0:
            return 0.0
        return self.at + missing / limit.decay_per_second + ASK_MARGIN_SECONDS


_taken: dict[str, _Taken] = {}
_taken_lock = threading.Lock()


def _forget(name: str) -> None:
    with _taken_lock:
        taken = _taken.get(name)
    if taken is not None:
        with taken.lock:
            taken.full, taken.refused_in_a_row = None, 0
            taken.until.clear()


def counted(limit: RateLimit) -> int | None:
    """At most how many of the limit's slots are active now, by this process's own count (None:
    unknown, as in a new process)."""
    with _taken_lock:
        taken = _taken.get(limit.name)
    if taken is None:
        return None
    with taken.lock:
        return taken.active_at(limit, time.monotonic())


def spare() -> int | None:
    """Slots of the rate limit pacing this context that are free now by this process's own
    count (none while that count is unknown: others may hold them); None when nothing paces
    this context or the limit is inactive (no call waits)."""
    limit = _current.get()
    if limit is None or not limit.active:
        return None
    active = counted(limit)
    return 0 if active is None else max(0, limit.most - active)


def asks(name: str) -> tuple[int, int]:
    """Slot requests this process sent for the limit `name`, and how many were refused."""
    with _taken_lock:
        taken = _taken.get(name)
        return (taken.asked, taken.refused) if taken else (0, 0)


def unused(name: str) -> int:
    """Slots of the limit `name` this process took that no call used: dropped once they lapsed
    (`HOLD_SECONDS`), or still held."""
    with _taken_lock:
        taken = _taken.get(name)
    if taken is None:
        return 0
    with taken.lock:
        return taken.lapsed + len(taken.until)


def _acquire(limit: RateLimit, slots: int, taken: _Taken) -> None:
    """Take `slots` slots, asked for when they are free by this process's own count of the
    server's (module docstring); `taken.lock` is held."""
    not_before = taken.ask_at(limit, slots)
    while True:
        wait = not_before - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sent = time.monotonic()
        retry_after = patiently(lambda: ask_slots(limit.name, slots))
        answered = time.monotonic()
        taken.asked += 1
        if retry_after is None:
            before = taken.active_at(limit, sent)
            # unknown before: the grant may have filled it (asked again at once, a refusal then
            # costs nothing: the server just wrote the row)
            taken.full = None if before is None else min(limit.most, before + slots)
            taken.at = answered
            taken.refused_in_a_row = 0
            return
        taken.refused += 1
        taken.refused_in_a_row += 1
        taken.full, taken.at = limit.most, answered  # full, its decay started over
        not_before = taken.ask_at(limit, slots)
        if taken.refused_in_a_row > 1 or not_before <= answered:
            # someone else asks too (or the decay is unknown): Prefect's spread, at least
            not_before = max(not_before, answered + retry_after)


def _stock(limit: RateLimit, taken: _Taken, calls: int) -> None:
    """At least one slot of ours not yet expired, taken (for `calls` calls) when there is none;
    `taken.lock` is held."""
    now = time.monotonic()
    while taken.until and taken.until[0] < now:
        taken.until.popleft()
        taken.lapsed += 1
    if not taken.until:
        occupy = limit.occupy(calls)
        _acquire(limit, occupy, taken)
        taken.until.extend([time.monotonic() + HOLD_SECONDS] * occupy)


def _taken_for(limit: RateLimit) -> _Taken:
    with _taken_lock:
        return _taken.setdefault(limit.name, _Taken())


def take_slot(limit: RateLimit) -> None:
    """Block until a slot of the limit is ours (from this process's batch, or a new batch sized
    to the calls waiting)."""
    taken = _taken_for(limit)
    with _taken_lock:
        taken.waiting += 1
    served = False
    try:
        with taken.lock:
            with _taken_lock:
                waiting = taken.waiting
            _stock(limit, taken, waiting)
            taken.until.popleft()
            with _taken_lock:  # no longer waiting before the next batch is sized
                taken.waiting -= 1
            served = True
    finally:
        if not served:
            with _taken_lock:
                taken.waiting -= 1


def take_ahead() -> None:
    """Ask now, in the background, for the slot the next SAE call of this context takes: for a
    call that comes after work needing no slot (the app lock, a ledger write, a task's start),
    so the Prefect round trip for its slot runs alongside that work instead of before the call
    (each costs 60-120 ms while the server records the run's task runs).

    Only when a slot is free by this process's count (or the count is unknown, as before a
    process's first call, when a call asks at once anyway) and no call of this process waits
    for one: where calls queue for slots (a fleet at the quota) a slot taken ahead would only
    jump the queue, or lapse unused. Like every slot taken ahead (`HOLD_SECONDS`), one not used
    in time is dropped: it counted against the limit, so the quota bound holds."""
    limit = _current.get()
    if limit is None or not limit.active:
        return
    taken = _taken_for(limit)
    with _taken_lock:
        if taken.waiting:
            return
    active = counted(limit)
    if active is not None and active >= limit.most:
        return

    def stock() -> None:
        with taken.lock:
            try:
                _stock(limit, taken, 1)
            except Exception:  # the call's own take_slot asks again, and raises what it meets
                return

    threading.Thread(target=stock, name="quota-ahead", daemon=True).start()


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
