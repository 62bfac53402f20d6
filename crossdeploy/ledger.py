"""The deploy ledger: what `teardown` reverses, kept as one Prefect Variable per entry.

It is written ahead, so a process killed at any point leaves no orphan. A kill between a write and
its record would otherwise lose the change for good: the re-run finds the resource as wanted and
records nothing. So a phase first records the writes it is about to make as *intended* entries
(`intend`, derived from the inspected state each write acts on: each step's `intents`), and
once they returned replaces them with the actual changes (`record(..., settles=...)`). An intended
entry still there at teardown is confirmed against the cloud (present and ours, or gone) and then
reversed by the same step's remove as a recorded change.

What is kept. Only the changes a step's remove reverses (the `Retention` the caller passes: the
steps, tasks/step.py), and the write-ahead intents (`Intent`, each step's `intents`) until their
write is recorded. An app "deployed" or
a change order "started" is never reversed, so repeated deploys add nothing; the whole history
is in the `crossdeploy.*` events (audit.emit_changes) and the runs' results. A change teardown
keeps once is kept once: entries are identified by (account, type, resource, action), first
wins (of several trust replacements only the first holds the trust policy to restore), and what
the steps call needless once something else is recorded is dropped (of a policy's new versions
only the newest few: RAM keeps no more). So the ledger's size depends on the resources a spec
touches, never on how often it is deployed.

Where. A Prefect Variable holds at most 5,000 JSON characters and its API has no compare-and-swap
(PATCH by name overwrites; 3.9 has no version or precondition), so a ledger in one Variable both
outgrows its store and loses entries when two processes read-modify-write it. Here each entry is
its own Variable, named after its ledger and identity and tagged with its ledger; writes are only
create (the server's unique name answers 409 to the second writer: the entry is there, first
wins) and delete by name, so concurrent writers never lose each other's entries, need no lock
(nothing to hold across a server restart or a crash) and a deploy that records nothing makes no
call. Reading is one filtered call (`tags` all_) per 200 entries, in creation order. An entry is
small (a Change, plus the evidence of an intent); one that could not fit a Variable once its write
has landed (`ENTRY_ROOM` for the ids and details only the write tells) fails the phase in `intend`,
before its cloud writes.

The ledger is keyed by account A's uid, the namespace and the app (`ledger_id`). Ledgers of
earlier versions (one Variable `crossdeploy-<namespace>-<app>` holding every change in a list)
are moved to the new place and shape by `migrate`, which every deploy (before its first write)
and teardown call: one read when there is none. Otherwise a deploy that records nothing makes no
ledger call at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import VariableCreate
from prefect.client.schemas.objects import Variable
from prefect.exceptions import ObjectAlreadyExists
from prefect.types import MAX_VARIABLE_VALUE_LENGTH

from crossdeploy.plan import Change
from crossdeploy.prefect_api import delete_variable, patiently, quick_client, read_variable
from crossdeploy.spec import DeploySpec

UNASSIGNED = "?"
"""In an intent's Change: an id the cloud assigns with the write (a policy version, a secret id)."""
PENDING = "pending"
"""The key that marks an entry as intended but not yet recorded; it holds the evidence."""
TAG = "crossdeploy-ledger"
"""Every ledger entry's tag; `TAG:<ledger id>` names its ledger."""
ENTRY_ROOM = 500
"""Characters an intent's entry leaves for what its write adds (the id the cloud assigns, a
detail such as the secret's registry hosts)."""
PAGE = 200


class Retention(Protocol):
    """Which changes the ledger keeps: the steps' answer (tasks/step.py `Steps`)."""

    def kept(self, change: Change) -> bool:
        """Teardown reverses it (every other change is history)."""
        ...

    def compacts(self, change: Change) -> bool:
        """Recording it can make earlier entries needless."""
        ...

    def needless(self, kept: Sequence[Change]) -> Collection[Change]:
        """Recorded changes teardown would find gone anyway."""
        ...


class LedgerEntryTooLargeError(ValueError):
    """A ledger entry would not fit a Prefect Variable; raised before the writes it announces."""


@dataclass(frozen=True)
class Intent:
    """A write about to be made: the Change it will record, and how to tell the result is ours."""

    change: Change
    """As far as it is known before the write; an id only the cloud assigns is UNASSIGNED."""
    evidence: dict[str, str] = field(default_factory=dict)
    """What marks the resource as ours if it exists (the description we create it with, ...)."""


@dataclass(frozen=True)
class Entry:
    """One ledger entry as stored: a recorded Change, or an Intent (with PENDING evidence)."""

    name: str
    value: dict[str, Any]

    @property
    def pending(self) -> bool:
        return isinstance(self.value.get(PENDING), dict)

    @property
    def change(self) -> Change:
        return Change(**{k: v for k, v in self.value.items() if k != PENDING})

    @property
    def size(self) -> int:
        return _chars(self.value)


@dataclass(frozen=True)
class Ledger:
    """A ledger as read, entries in the order they were written."""

    entries: tuple[Entry, ...]

    @property
    def changes(self) -> list[Change]:
        """The recorded changes."""
        return [e.change for e in self.entries if not e.pending]

    @property
    def pending(self) -> list[Intent]:
        """The intended writes no run recorded (its process died between write and record)."""
        return [Intent(e.change, dict(e.value[PENDING])) for e in self.entries if e.pending]

    @property
    def size(self) -> int:
        """JSON characters of all entries."""
        return sum(e.size for e in self.entries)


def ledger_id(spec: DeploySpec, app_uid: str) -> str:
    """`<account A uid>:<namespace>:<app>`: the app a ledger belongs to."""
    return f"{app_uid}:{spec.app.namespace_id}:{spec.app.name}"


def old_ledger_name(spec: DeploySpec) -> str:
    """The single Variable earlier versions kept a ledger in (without account A's uid)."""
    raw = f"crossdeploy-{spec.app.namespace_id}-{spec.app.name}".lower()
    return re.sub(r"[^a-z0-9_-]+", "-", raw)[:255]


def read(spec: DeploySpec, app_uid: str) -> Ledger:
    with quick_client() as client:
        return _read(client, ledger_id(spec, app_uid))


def intend(spec: DeploySpec, app_uid: str, intents: Sequence[Intent]) -> None:
    """Before a phase writes: check that every entry the phase will leave fits, then record the
    writes about to be made."""
    values = [_pending_value(i) for i in intents]
    for value in values:
        _check(value, room=ENTRY_ROOM)
    if values:
        key = ledger_id(spec, app_uid)
        with quick_client() as client:
            _create(client, key, values)


def record(
    spec: DeploySpec,
    app_uid: str,
    changes: Sequence[Change],
    settles: Sequence[Intent] = (),
    *,
    retention: Retention,
) -> None:
    """Record the changes teardown needs, then drop the intents they settle."""
    kept = [c for c in changes if retention.kept(c)]
    values = [asdict(c) for c in kept]
    for value in values:
        _check(value, room=0)
    if not values and not settles:
        return
    key = ledger_id(spec, app_uid)
    with quick_client() as client:
        _create(client, key, values)
        if any(retention.compacts(c) for c in kept):
            _drop_needless(client, _read(client, key), retention)
        for intent in settles:
            _delete(client, _entry_name(key, _pending_value(intent)))


def forget(ledger: Ledger) -> None:
    """Delete these entries (teardown reversed them); entries written since are left."""
    with quick_client() as client:
        for entry in ledger.entries:
            _delete(client, entry.name)


def migrate(spec: DeploySpec, app_uid: str, *, retention: Retention) -> None:
    """Move an old-format ledger (`old_ledger_name`) here, keeping what teardown needs, then
    delete it; idempotent, so a run killed halfway is finished by the next."""
    with quick_client() as client:
        _migrate(client, spec, ledger_id(spec, app_uid), retention)


# -- storage ------------------------------------------------------------------------------------


def _chars(value: Any) -> int:
    """Length as Prefect measures a Variable's value (compact JSON, UTF-8 bytes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check(value: dict[str, Any], *, room: int) -> None:
    if _chars(value) + room > MAX_VARIABLE_VALUE_LENGTH:
        raise LedgerEntryTooLargeError(
            f"the ledger entry for {value['resource_type']} {value['resource_id']} "
            f"({value['action']}) would take {_chars(value) + room} characters, more than a "
            f"Prefect Variable holds ({MAX_VARIABLE_VALUE_LENGTH}); the writes it stands for "
            "were not made"
        )


def _pending_value(intent: Intent) -> dict[str, Any]:
    return {**asdict(intent.change), PENDING: intent.evidence}


def _identity(value: dict[str, Any]) -> Any:
    """A recorded change is itself once per (account, type, resource, action); an intent is
    what it says in full."""
    if PENDING in value:
        return value
    return [value[k] for k in ("account", "resource_type", "resource_id", "action")]


def _entry_name(key: str, value: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps([key, _identity(value)], sort_keys=True).encode())
    readable = re.sub(r"[^a-z0-9_-]+", "-", f"{TAG}-{key}".lower())[:200]
    return f"{readable}-{digest.hexdigest()[:20]}"


def _create(client: SyncPrefectClient, key: str, values: Iterable[dict[str, Any]]) -> None:
    tags = [TAG, f"{TAG}:{key}"]
    for value in values:
        variable = VariableCreate(name=_entry_name(key, value), value=value, tags=tags)
        with suppress(ObjectAlreadyExists):  # there already: the same entry, first wins
            patiently(partial(client.create_variable, variable))


def _delete(client: SyncPrefectClient, name: str) -> None:
    patiently(lambda: delete_variable(client, name))


def _read(client: SyncPrefectClient, key: str) -> Ledger:
    found: list[Variable] = []
    query = {"tags": {"all_": [f"{TAG}:{key}"]}}
    while True:
        body = {"variables": query, "sort": "CREATED_DESC", "offset": len(found), "limit": PAGE}
        response = patiently(partial(client.request, "POST", "/variables/filter", json=body))
        page = Variable.model_validate_list(response.json())
        found += page
        if len(page) < PAGE:
            break
    found.sort(key=lambda v: (v.created, v.name))
    return Ledger(tuple(Entry(v.name, v.value) for v in found if isinstance(v.value, dict)))


def _drop_needless(client: SyncPrefectClient, ledger: Ledger, retention: Retention) -> None:
    """Delete the recorded entries teardown would find gone (`Retention.needless`)."""
    recorded = [e for e in ledger.entries if not e.pending]
    needless = retention.needless([e.change for e in recorded])
    for entry in recorded:
        if entry.change in needless:
            _delete(client, entry.name)


def _migrate(client: SyncPrefectClient, spec: DeploySpec, key: str, retention: Retention) -> None:
    name = old_ledger_name(spec)
    old: Any = patiently(lambda: read_variable(client, name))
    if old is None:
        return
    items = [item for item in old if isinstance(item, dict)] if isinstance(old, list) else []
    values = [i for i in items if PENDING in i or retention.kept(Change(**i))]
    _create(client, key, values)
    _drop_needless(client, _read(client, key), retention)
    _delete(client, name)
