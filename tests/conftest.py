"""Shared fixtures: one sandbox process for the whole session, reset before every test that uses it.

`sdk` builds official SDK clients pointed at the sandbox for a world account, with either the
default ACS3 signature or the legacy v2 signatures, and optionally with STS credentials.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import World, bundled_world_path, load_world

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytest_plugins = [
    "tests.reliability_report",
    "tests.deploy_fixtures",
    "tests.schedule",
    "tests.contract_guard",
    "tests.oidc_support",
]

KEYS = {
    "app": ("LTAIsandboxApp0001", "sandbox-app-secret"),
    "registry": ("LTAIsandboxReg0001", "sandbox-registry-secret"),
}
UIDS = {"app": "1111111111111111", "registry": "2222222222222222"}


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server (temporary SQLite) for the whole session, started on first use,
    with the test account's SAE rate limits set by its operator (tests.deploy_support)."""
    from prefect.testing.utilities import prefect_test_harness

    from tests.deploy_support import open_sae_quota

    with prefect_test_harness(server_startup_timeout=120):
        open_sae_quota()
        yield


@pytest.fixture(scope="session")
def demo_world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    with SandboxProcess() as process:
        yield process


FAST_TIMING = {"change_order_seconds": 0.6, "minute_seconds": 0.6}
"""Change orders in 0.6 s and batch-wait minutes of 0.6 s: same rules, shorter waits."""


def demo_world_data(**timing: float) -> dict[str, Any]:
    """The bundled demo world as data, with `timing` keys overridden."""
    data: dict[str, Any] = yaml.safe_load(bundled_world_path().read_text())
    data["timing"] = {**data.get("timing", {}), **timing}
    return data


def write_world(data: dict[str, Any], directory: Path) -> Path:
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fresh_admin(process: SandboxProcess) -> Iterator[SandboxAdmin]:
    """The admin client of a sandbox just reset to its world (for function-scoped fixtures)."""
    client = SandboxAdmin(process.url)
    client.reset()
    yield client
    client.close()


@pytest.fixture(scope="session")
def fast_sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The demo world with short change orders, for tests that run many of them."""
    path = write_world(demo_world_data(**FAST_TIMING), tmp_path_factory.mktemp("fast-world"))
    with SandboxProcess(world=path) as process:
        yield process


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


class SdkFactory:
    """Official SDK clients for the sandbox, built the way users configure them."""

    def __init__(self, endpoint: str, region: str = "cn-hangzhou") -> None:
        self.endpoint = endpoint
        self.region = region

    def in_region(self, region: str) -> SdkFactory:
        """The same factory, building clients for `region` (SAE, VPC and CR are regional)."""
        return SdkFactory(self.endpoint, region)

    def config(
        self,
        account: str = "app",
        *,
        v2: bool = False,
        key: tuple[str, str] | None = None,
        token: str | None = None,
        region: str | None = None,
    ) -> Any:
        from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters

        from blocks.credentials import REGION_HEADER

        key_id, secret = key or KEYS[account]
        region = region or self.region
        config = Config(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=token,
            endpoint=self.endpoint,
            protocol="http",
            region_id=region,
            # The region the client is built for, as the credentials block sends it to the
            # sandbox (its endpoint host names none).
            global_parameters=GlobalParameters(headers={REGION_HEADER: region}),
            read_timeout=30000,
        )
        if v2:
            config.signature_algorithm = "v2"
        return config

    def client(self, module: str, account: str, **kw: Any) -> Any:
        """The official SDK's Client of `alibabacloud_<module>` for a world account."""
        return importlib.import_module(f"alibabacloud_{module}.client").Client(
            self.config(account, **kw)
        )

    def sts(self, account: str = "app", **kw: Any) -> Any:
        return self.client("sts20150401", account, **kw)

    def ram(self, account: str = "registry", **kw: Any) -> Any:
        return self.client("ram20150501", account, **kw)

    def vpc(self, account: str = "app", **kw: Any) -> Any:
        return self.client("vpc20160428", account, **kw)

    def cr(self, account: str = "registry", **kw: Any) -> Any:
        return self.client("cr20181201", account, **kw)

    def sae(self, account: str = "app", **kw: Any) -> Any:
        return self.client("sae20190506", account, **kw)


@pytest.fixture
def sdk(admin: SandboxAdmin, sandbox_process: SandboxProcess) -> SdkFactory:
    """SDK clients against a freshly reset sandbox."""
    return SdkFactory(sandbox_process.endpoint)


def sandbox_credentials(url: str, account: str, **fields: Any) -> Any:
    """An AlibabaCloudCredentials block for a world account, pointed at a sandbox."""
    from pydantic import SecretStr

    from blocks import AlibabaCloudCredentials

    key_id, secret = KEYS[account]
    return AlibabaCloudCredentials(
        access_key_id=key_id, access_key_secret=SecretStr(secret), endpoint=url, **fields
    )


@pytest.fixture
def creds(admin: SandboxAdmin, sandbox_process: SandboxProcess) -> dict[str, Any]:
    """Credential blocks of both demo accounts against a freshly reset sandbox."""
    return {a: sandbox_credentials(sandbox_process.url, a) for a in KEYS}


@pytest.fixture
def fast_creds(fast_admin: SandboxAdmin, fast_sandbox_process: SandboxProcess) -> dict[str, Any]:
    """Credential blocks of both demo accounts against a freshly reset fast sandbox."""
    return {a: sandbox_credentials(fast_sandbox_process.url, a) for a in KEYS}


DEMO_SPEC: dict[str, Any] = {
    "accounts": {"app": "sandbox-app", "registry": "sandbox-registry"},
    "app": {
        "name": "shop-web",
        "region": "cn-hangzhou",
        "namespace": "cn-hangzhou:demo",
        "cpu": 1000,
        "memory": 2048,
        "replicas": 2,
    },
    "image": {
        "url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1",
        "instance_id": "cri-demo",
    },
}
