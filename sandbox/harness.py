"""The sandbox for other people's tests: `alibaba_sandbox()` and the `SandboxCloud` it yields.

moto's `mock_aws` patches botocore inside the process; the Alibaba SDKs have no such seam, so
here the sandbox is a real HTTP server in a child process (`SandboxProcess`) and the unmodified
official SDKs reach it through an endpoint override. The pytest plugin (`sandbox.pytest_plugin`)
yields the same object from a `SandboxPool`: one process per world file, started on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import World, bundled_world_path, load_world


@dataclass(frozen=True)
class SandboxAccount:
    """A world account and its (first) access key: what an SDK `Config` needs to act in it."""

    name: str
    uid: str
    access_key_id: str
    access_key_secret: str


@dataclass(frozen=True)
class SandboxCloud:
    """A running sandbox: where it listens, the world's accounts, and its admin routes."""

    endpoint: str
    """`http://127.0.0.1:PORT`."""
    accounts: Mapping[str, SandboxAccount]
    world: Path
    admin: SandboxAdmin
    """`/_sandbox/*`: the request log, state, injected faults, timing."""

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the form the SDK's `Config.endpoint` takes (with `protocol="http"`)."""
        return self.endpoint.removeprefix("http://")

    def reset(self) -> None:
        """Back to the world file's resources; faults, timing changes and request log cleared."""
        self.admin.reset()


def world_accounts(world: World) -> dict[str, SandboxAccount]:
    """Every account of a world by name, with its first access key."""
    return {
        account.name: SandboxAccount(
            name=account.name,
            uid=account.uid,
            access_key_id=account.access_keys[0].id,
            access_key_secret=account.access_keys[0].secret,
        )
        for account in world.accounts
    }


class SandboxPool:
    """Running sandboxes, one per world file, each started the first time it is asked for."""

    def __init__(self) -> None:
        self._running: dict[Path, tuple[SandboxProcess, SandboxCloud]] = {}

    def cloud(self, world: Path | str | None = None) -> SandboxCloud:
        """The sandbox of `world` (the bundled demo world when None), started if need be."""
        path = Path(world).resolve() if world is not None else bundled_world_path().resolve()
        if path not in self._running:
            # Validated here first, so a bad world file fails with its field paths, not as a
            # child process that did not start.
            accounts = world_accounts(load_world(path))
            process = SandboxProcess(world=path)
            process.start()
            cloud = SandboxCloud(process.url, accounts, path, SandboxAdmin(process.url))
            self._running[path] = (process, cloud)
        return self._running[path][1]

    def close(self) -> None:
        """Stop every sandbox this pool started."""
        while self._running:
            _, (process, cloud) = self._running.popitem()
            cloud.admin.close()
            process.stop()


@contextmanager
def alibaba_sandbox(world: Path | str | None = None) -> Iterator[SandboxCloud]:
    """A sandbox for the `with` block, from `world` (the bundled demo world when None):

    `with alibaba_sandbox() as cloud: ...` starts it, yields its `SandboxCloud`, stops it."""
    pool = SandboxPool()
    try:
        yield pool.cloud(world)
    finally:
        pool.close()
