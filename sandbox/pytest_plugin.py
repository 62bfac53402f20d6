"""pytest plugin (entry point `pytest11`, loaded once sae-crossdeploy is installed): the
`alibaba_sandbox` fixture and the `alibaba_sandbox_world` marker.

Scope: one sandbox process per world file per pytest session (per worker under xdist), started
the first time a test asks for that world, stopped at the session's end; the fixture itself is
per test and resets the sandbox to its world file first, so every test starts from the same
resources without paying a process start each. A session with no test using the fixture starts
nothing; the sandbox modules are imported only by the fixture (a quarter second at every pytest
start otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sandbox.harness import SandboxCloud, SandboxPool

WORLD_MARKER = "alibaba_sandbox_world"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{WORLD_MARKER}(path): the world file the alibaba_sandbox fixture serves (a relative "
        "path is from the test file's directory); without it, the bundled demo world.",
    )


def marked_world(request: pytest.FixtureRequest) -> Path | None:
    """The world file the closest `alibaba_sandbox_world` marker names (test, class, module)."""
    marker = request.node.get_closest_marker(WORLD_MARKER)
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(f"@pytest.mark.{WORLD_MARKER} takes one argument, a world file")
    path = Path(marker.args[0])
    return path if path.is_absolute() else request.path.parent / path


@pytest.fixture(scope="session")
def alibaba_sandbox_pool() -> Iterator[SandboxPool]:
    """The session's sandboxes, one per world file; each starts when a test first needs it."""
    from sandbox.harness import SandboxPool

    pool = SandboxPool()
    yield pool
    pool.close()


@pytest.fixture(name="alibaba_sandbox")
def alibaba_sandbox_fixture(
    request: pytest.FixtureRequest, alibaba_sandbox_pool: SandboxPool
) -> SandboxCloud:
    """A sandbox cloud just reset to its world file: `.endpoint`, `.host`, `.accounts[name]`
    (`.uid`, `.access_key_id`, `.access_key_secret`), `.admin`."""
    cloud = alibaba_sandbox_pool.cloud(marked_world(request))
    cloud.reset()
    return cloud
