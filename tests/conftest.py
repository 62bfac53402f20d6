"""Fixtures for the whole suite: one sandbox process per session (the demo world, and one with
fast change orders), reset before every test that uses it; SDK clients and credential blocks
for its accounts; the session's Prefect test server; the deploy tests' blocks and clean world.

A fixture only one area uses is in that area's conftest.py. Builders and helpers live in
tests/support/; so do the suite's plugins registered here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import KEYS, SdkFactory, sandbox_credentials
from tests.support.worlds import (
    FAST_TIMING,
    demo_world_data,
    fresh_admin,
    trusting,
    write_world,
)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytest_plugins = [
    "tests.support.reliability_report",
    "tests.support.schedule",
    "tests.support.contract_guard",
    "tests.support.oidc",
]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server (temporary SQLite) for the whole session, started on first use,
    with the test account's SAE rate limits set by its operator (tests.support.deploy_support)."""
    from prefect.testing.utilities import prefect_test_harness

    from tests.support.deploy_support import open_sae_quota

    with prefect_test_harness(server_startup_timeout=120):
        open_sae_quota()
        yield


@pytest.fixture(scope="session")
def trusted_cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's sandboxes' test CAs in one file, trusted through `SSL_CERT_FILE` (what the
    credentials library's HTTPS-only STS sources read: tests/support/oidc.py)."""
    bundle = tmp_path_factory.mktemp("trusted-cas") / "cas.pem"
    bundle.write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(bundle))
        yield bundle


@pytest.fixture(scope="session")
def sandbox_process(
    trusted_cas: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    ca = tmp_path_factory.mktemp("sandbox-ca") / "ca.pem"
    with SandboxProcess(tls_ca_out=ca) as process:
        yield trusting(process, trusted_cas)


@pytest.fixture(scope="session")
def fast_sandbox_process(
    trusted_cas: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    """The demo world with short change orders, for tests that run many of them."""
    directory = tmp_path_factory.mktemp("fast-world")
    path = write_world(demo_world_data(**FAST_TIMING), directory)
    with SandboxProcess(world=path, tls_ca_out=directory / "ca.pem") as process:
        yield trusting(process, trusted_cas)


@pytest.fixture
def fast_admin(fast_sandbox_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    yield from fresh_admin(fast_sandbox_process)


@pytest.fixture
def fast_sdk(fast_admin: SandboxAdmin, fast_sandbox_process: SandboxProcess) -> SdkFactory:
    """SDK clients against a freshly reset fast sandbox."""
    return SdkFactory(fast_sandbox_process.endpoint)


@pytest.fixture
def admin(sandbox_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    """The admin client of a freshly reset sandbox."""
    yield from fresh_admin(sandbox_process)


@pytest.fixture
def sdk(admin: SandboxAdmin, sandbox_process: SandboxProcess) -> SdkFactory:
    """SDK clients against a freshly reset sandbox."""
    return SdkFactory(sandbox_process.endpoint)


@pytest.fixture
def fast_creds(fast_admin: SandboxAdmin, fast_sandbox_process: SandboxProcess) -> dict[str, Any]:
    """Credential blocks of both demo accounts against a freshly reset fast sandbox."""
    return {a: sandbox_credentials(fast_sandbox_process.url, a) for a in KEYS}


# -- the deploy tests: blocks and a clean world per test ------------------------------------------


@pytest.fixture(scope="module")
def blocks(prefect_harness: None, fast_sandbox_process: SandboxProcess) -> None:
    """sandbox-app, sandbox-registry, acr-login and acr-personal-login, for the fast sandbox."""
    from tests.support.deploy_support import save_blocks

    save_blocks(fast_sandbox_process.url)


@pytest.fixture
def world(blocks: None, fast_admin: SandboxAdmin) -> SandboxAdmin:
    """A reset fast sandbox, blocks pointing at it, and no deploy ledgers."""
    from tests.support.deploy_support import forget_ledgers

    forget_ledgers()
    return fast_admin
