"""The contract journal: every request that broke the API contract or carried a parameter the
contract does not know, appended as a JSON line to the file named by CONTRACT_JOURNAL_ENV.

A test suite sets the variable before it starts sandboxes (the processes inherit it) and reads
the lines its tests caused: our own `make test` fails a test whose requests the contract refused
unless the test expects it (tests/support/contract_guard.py). Only names go in, never values: a
value may be a secret.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

CONTRACT_JOURNAL_ENV = "CROSSDEPLOY_SANDBOX_CONTRACT_JOURNAL"

_lock = threading.Lock()


def record(product: str, action: str, *, code: str = "", ignored: list[str] | None = None) -> None:
    """Append one line: the request's product and action, the contract refusal's code (empty
    when the request was served) and the parameters the contract does not know."""
    path = os.environ.get(CONTRACT_JOURNAL_ENV)
    if not path:
        return
    entry: dict[str, Any] = {
        "product": product,
        "action": action,
        "code": code,
        "ignored": sorted(ignored or []),
    }
    with _lock, open(path, "a", encoding="utf-8") as journal:  # one write per line: O_APPEND
        journal.write(json.dumps(entry, sort_keys=True) + "\n")


def read(path: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The entries from byte `offset` on, and the offset after them."""
    try:
        with open(path, "rb") as journal:
            journal.seek(offset)
            data = journal.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    entries = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return entries, offset + len(complete)
