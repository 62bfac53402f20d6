"""The blocks: Prefect's block standards, saving and loading, and SDK clients from them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites.blocks import BlockStandardTestSuite
from pydantic import SecretStr

from blocks import AcrRegistryLogin, AlibabaCloudCredentials
from cli.sandbox_blocks import save_sandbox_blocks
from sandbox.testing import SandboxProcess
from tests.support.clients import UIDS


@pytest.mark.parametrize("block", [AlibabaCloudCredentials, AcrRegistryLogin])
class TestBlockStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        cls: type[Block] = request.param
        return cls

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """The standard check downloads the logo, which this offline machine cannot; check
        instead that it is an https URL of a square avatar of a sensible size."""
        url = urlsplit(str(block._logo_url))
        assert url.scheme == "https" and url.netloc
        size = re.search(r"(?:^|&)s=(\d+)", url.query)
        assert size is not None and 45 < int(size.group(1)) < 1000


def test_saved_blocks_load_and_reach_the_sandbox(
    prefect_harness: None, sandbox_process: SandboxProcess
) -> None:
    names = save_sandbox_blocks(sandbox_process.url)
    assert names == ["sandbox-app", "sandbox-registry"]
    for name, account in zip(names, ("app", "registry"), strict=True):
        loaded = AlibabaCloudCredentials.load(name)
        assert isinstance(loaded, AlibabaCloudCredentials)
        assert loaded.endpoint == sandbox_process.url
        identity = loaded.get_client("sts").get_caller_identity().body
        assert identity.account_id == UIDS[account]


def test_secrets_are_masked() -> None:
    creds = AlibabaCloudCredentials(
        access_key_id="LTAIexample",
        access_key_secret=SecretStr("super-secret-value"),
        security_token=SecretStr("token-value"),
    )
    login = AcrRegistryLogin(username="user", password=SecretStr("registry-password"))
    shown = repr(creds) + str(creds) + repr(login) + str(login) + creds.model_dump_json()
    for secret in ("super-secret-value", "token-value", "registry-password"):
        assert secret not in shown


def test_per_product_endpoint_and_unknown_product(creds: dict[str, Any]) -> None:
    broken = creds["app"].model_copy(
        update={"endpoint": "http://127.0.0.1:9", "endpoints": {"sts": creds["app"].endpoint}}
    )
    assert broken.get_client("sts").get_caller_identity().body.account_id == UIDS["app"]
    with pytest.raises(ValueError, match="unknown product"):
        creds["app"].get_client("ecs")


def test_prefect_block_register_finds_both_blocks(prefect_harness: None) -> None:
    """`prefect block register -m blocks` (a server without the package installed needs it)."""
    from prefect.settings import PREFECT_API_URL

    prefect = Path(sys.executable).parent / "prefect"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [str(prefect), "block", "register", "-m", "blocks"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = " ".join(done.stdout.split())
    assert "Alibaba Cloud Credentials" in output and "ACR Registry Login" in output


def test_a_fresh_server_finds_our_block_types_through_the_collections_entry_point(
    tmp_path: Path,
) -> None:
    """`pip install` is all a server needs: pyproject.toml's `prefect.collections` entry point
    names `blocks`, which Prefect imports at start and registers. The server here is new
    (its own PREFECT_HOME and database) and nobody ran `prefect block register`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "home"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    prefect = Path(sys.executable).parent / "prefect"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not _healthy(api):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        slugs = {
            slug: httpx.get(f"{api}/block_types/slug/{slug}", timeout=10).status_code
            for slug in ("alibaba-cloud-credentials", "acr-registry-login")
        }
        assert slugs == {"alibaba-cloud-credentials": 200, "acr-registry-login": 200}
        schemas = httpx.post(f"{api}/block_schemas/filter", json={}, timeout=10).json()
        capabilities = {
            s["block_type"]["slug"]: s["capabilities"]
            for s in schemas
            if s["block_type"]["slug"] in slugs
        }
        assert set(capabilities) == set(slugs)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
