"""The suite-wide contract guard (issue 15, item 5).

Every sandbox a test starts (SandboxProcess, the CLI's `sandbox serve`, the demo) inherits
CONTRACT_JOURNAL_ENV, so it journals each request the contract refused and each parameter it
ignored (sandbox/journal.py). After each test's teardown the guard reads what that test caused,
fixtures included: a refusal or an ignored parameter fails the test (an error in its teardown),
unless the test is marked `contract_breaches` because sending such requests is its point (the
sandbox's own refusal tests, fuzzing, signatures).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import journal

MARKER = "contract_breaches"
_offset = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: the test sends requests the API contract refuses, on purpose"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = Path(tempfile.gettempdir()) / f"crossdeploy-contract-{os.getppid()}-{worker}.jsonl"
    path.unlink(missing_ok=True)
    os.environ[journal.CONTRACT_JOURNAL_ENV] = str(path)


def _journal_path() -> str:
    return os.environ[journal.CONTRACT_JOURNAL_ENV]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_offset] = _end(_journal_path())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    result = yield
    offset = item.stash.get(_offset, None)
    if offset is None:
        return result
    entries, _ = journal.read(_journal_path(), offset)
    if entries and item.get_closest_marker(MARKER) is None:
        lines = "\n".join(
            f"  {e['product']}:{e['action']} "
            + (f"refused ({e['code']})" if e["code"] else f"ignored {', '.join(e['ignored'])}")
            for e in entries
        )
        pytest.fail(
            f"requests outside the API contract (sandbox/journal.py), not marked {MARKER}:\n"
            f"{lines}",
            pytrace=False,
        )
    return result


def _end(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return 0
