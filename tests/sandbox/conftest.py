"""Fixtures of the sandbox tests only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.testing import SandboxProcess
from sandbox.world import World, load_world
from tests.support.clients import SdkFactory
from tests.support.ram_groups import groups_world
from tests.support.worlds import fresh_admin, write_world


@pytest.fixture(scope="session")
def demo_world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def ram_groups_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox per session with the RAM user groups world (tests/support/ram_groups.py)."""
    path = write_world(groups_world(), tmp_path_factory.mktemp("ram-groups"))
    with SandboxProcess(world=path) as process:
        yield process


@pytest.fixture
def ram_groups_sdk(ram_groups_process: SandboxProcess) -> Iterator[SdkFactory]:
    """SDK clients against the RAM user groups sandbox, reset to its world."""
    for _ in fresh_admin(ram_groups_process):
        yield SdkFactory(ram_groups_process.endpoint)
