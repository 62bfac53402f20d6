"""The `crossdeploy sandbox` commands as a user runs them (contract: interfaces.md section 1).

`serve` is run as a real child process because its promise is about what appears on stdout and
stderr; `actions` is run in-process with Typer's runner.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app
from sandbox.routes import PRODUCTS, ROUTES
from sandbox.world import bundled_world_path
from tests.support.processes import crossdeploy

LISTENING = re.compile(r"sandbox listening on http://127\.0\.0\.1:(\d+)\n")


def first_line(stream: IO[str] | None, timeout: float = 30.0) -> str:
    """One line from a child's pipe, or "" if none comes within `timeout` (never hangs a test)."""
    assert stream is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


@pytest.fixture
def serving() -> Iterator[subprocess.Popen[str]]:
    """`crossdeploy sandbox serve --port 0`, stopped (and reaped) after the test."""
    process = subprocess.Popen(
        crossdeploy("sandbox", "serve", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def test_serve_announces_its_address_in_exactly_one_line(
    serving: subprocess.Popen[str],
) -> None:
    """The one stdout line names a real, loopback, listening address, and nothing follows it."""
    line = first_line(serving.stdout)
    match = LISTENING.fullmatch(line)
    assert match, f"unexpected first line {line!r}"
    port = int(match.group(1))
    assert port > 0
    health = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", trust_env=False, timeout=10)
    assert health.json() == {"ok": True}
    serving.terminate()
    rest, _ = serving.communicate(timeout=10)
    assert rest == ""


BAD_WORLDS = {
    "not-yaml": "accounts: [\n",
    "not-a-mapping": "- just\n- a list\n",
    "no-accounts": "accounts: []\n",
    "unknown-account": bundled_world_path()
    .read_text()
    .replace("account: registry", "account: ghost"),
    "bad-cidr": bundled_world_path().read_text().replace("172.16.1.0/24", "172.16.1.0/99"),
}


@pytest.mark.parametrize("content", list(BAD_WORLDS.values()), ids=list(BAD_WORLDS))
def test_serve_refuses_an_invalid_world_in_one_line(tmp_path: Path, content: str) -> None:
    """A bad world file stops start-up with a non-zero exit and one line saying why."""
    world = tmp_path / "world.yaml"
    world.write_text(content)
    done = subprocess.run(
        crossdeploy("sandbox", "serve", "--port", "0", "--world", str(world)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("crossdeploy sandbox serve: ")
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_missing_world_file(tmp_path: Path) -> None:
    """A path that does not exist is named in the one-line reason."""
    missing = tmp_path / "nowhere.yaml"
    done = subprocess.run(
        crossdeploy("sandbox", "serve", "--world", str(missing)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1
    assert str(missing) in done.stderr


def test_actions_lists_every_route_under_its_product() -> None:
    """The printed table is the route table: each product's header, then exactly its actions."""
    result = CliRunner().invoke(app, ["sandbox", "actions"])
    assert result.exit_code == 0, result.output
    listed: dict[str, list[str]] = {}
    current = ""
    for line in result.output.splitlines():
        if not line.startswith(" "):
            current = line.split()[0]
            listed[current] = []
        else:
            listed[current].append(line.split()[0])
    expected = {p.code: [r.action for r in ROUTES if r.product is p] for p in PRODUCTS}
    assert listed == expected
    headers = [line for line in result.output.splitlines() if not line.startswith(" ")]
    for product, header in zip(PRODUCTS, headers, strict=True):
        count = len(expected[product.code])
        assert header == f"{product.code} {product.version} ({product.style}, {count} actions)"
