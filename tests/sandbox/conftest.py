"""Fixtures of the sandbox tests only."""

from __future__ import annotations

import pytest

from sandbox.world import World, load_world


@pytest.fixture(scope="session")
def demo_world() -> World:
    return load_world()
