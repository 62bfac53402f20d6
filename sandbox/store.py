"""Durable state: every resource is a JSON document in SQLite, keyed by account, region, kind, id.

One connection, one lock, one transaction per API call: a call's writes commit together, and the
commit (WAL, synchronous=FULL) happens before the response is sent, so an acknowledged write
survives `kill -9` of the server. Documents keep their insertion order (`seq`) for list calls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

GLOBAL = ""
"""Region of resources that have none (RAM, access keys)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (account, region, kind, id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Scope:
    """Where a resource lives: an account uid and a region (GLOBAL for global services)."""

    account: str
    region: str = GLOBAL


class Tx:
    """The view of the store inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, scope: Scope, kind: str, rid: str) -> Doc | None:
        row = self._conn.execute(
            "SELECT body FROM resources WHERE account=? AND region=? AND kind=? AND id=?",
            (scope.account, scope.region, kind, rid),
        ).fetchone()
        return None if row is None else _load(row[0])

    def put(self, scope: Scope, kind: str, rid: str, doc: Mapping[str, Any]) -> None:
        """Insert, or replace keeping the original position in list order."""
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        self._conn.execute(
            "INSERT INTO resources (account, region, kind, id, body) VALUES (?,?,?,?,?) "
            "ON CONFLICT (account, region, kind, id) DO UPDATE SET body=excluded.body",
            (scope.account, scope.region, kind, rid, body),
        )

    def delete(self, scope: Scope, kind: str, rid: str) -> bool:
        cur = self._conn.execute(
            "DELETE FROM resources WHERE account=? AND region=? AND kind=? AND id=?",
            (scope.account, scope.region, kind, rid),
        )
        return cur.rowcount > 0

    def all(self, scope: Scope, kind: str) -> list[Doc]:
        rows = self._conn.execute(
            "SELECT body FROM resources WHERE account=? AND region=? AND kind=? ORDER BY seq",
            (scope.account, scope.region, kind),
        ).fetchall()
        return [_load(r[0]) for r in rows]

    def list_everywhere(self, kind: str) -> list[tuple[Scope, Doc]]:
        """Every resource of a kind in every account and region, for cross-account lookups."""
        rows = self._conn.execute(
            "SELECT account, region, body FROM resources WHERE kind=? ORDER BY seq", (kind,)
        ).fetchall()
        return [(Scope(r[0], r[1]), _load(r[2])) for r in rows]

    def dump(self) -> dict[str, dict[str, dict[str, dict[str, Doc]]]]:
        """account -> region -> kind -> id -> document."""
        out: dict[str, dict[str, dict[str, dict[str, Doc]]]] = {}
        rows = self._conn.execute(
            "SELECT account, region, kind, id, body FROM resources ORDER BY seq"
        ).fetchall()
        for account, region, kind, rid, body in rows:
            out.setdefault(account, {}).setdefault(region or "global", {}).setdefault(kind, {})[
                rid
            ] = _load(body)
        return out

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def clear(self) -> None:
        self._conn.execute("DELETE FROM resources")
        self._conn.execute("DELETE FROM meta")


def _load(body: str) -> Doc:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value


class Store:
    """The SQLite file behind the sandbox; safe to share between request threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Serialized read-write transaction; commits on success, rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
