"""Fixtures of the deploy tests (a plugin of conftest.py): blocks and a clean world per test.

`blocks` saves the credential and registry-login blocks for the fast sandbox once per module;
`world` resets that sandbox and forgets every deploy ledger before each test.
"""

from __future__ import annotations

import pytest

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.deploy_support import forget_ledgers, save_blocks


@pytest.fixture(scope="module")
def blocks(prefect_harness: None, fast_sandbox_process: SandboxProcess) -> None:
    """sandbox-app, sandbox-registry, acr-login and acr-personal-login, for the fast sandbox."""
    save_blocks(fast_sandbox_process.url)


@pytest.fixture
def world(blocks: None, fast_admin: SandboxAdmin) -> SandboxAdmin:
    """A reset fast sandbox, blocks pointing at it, and no deploy ledgers."""
    forget_ledgers()
    return fast_admin
