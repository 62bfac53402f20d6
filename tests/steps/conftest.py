"""Fixtures of the step tests only."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, sandbox_credentials


@pytest.fixture
def creds(admin: SandboxAdmin, sandbox_process: SandboxProcess) -> dict[str, Any]:
    """Credential blocks of both demo accounts against a freshly reset sandbox."""
    return {a: sandbox_credentials(sandbox_process.url, a) for a in KEYS}
