"""The demo world's accounts (keys, uids) and the official SDK clients and credential blocks a
test builds for them, pointed at a sandbox; what a refused SDK call raised."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException

KEYS = {
    "app": ("LTAIsandboxApp0001", "sandbox-app-secret"),
    "registry": ("LTAIsandboxReg0001", "sandbox-registry-secret"),
}
UIDS = {"app": "1111111111111111", "registry": "2222222222222222"}


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


def sandbox_credentials(url: str, account: str, **fields: Any) -> Any:
    """An AlibabaCloudCredentials block for a world account, pointed at a sandbox (`fields`
    override any of its own, a wrong secret for example)."""
    from pydantic import SecretStr

    from blocks import AlibabaCloudCredentials

    key_id, secret = KEYS[account]
    keys: dict[str, Any] = {"access_key_id": key_id, "access_key_secret": SecretStr(secret)}
    return AlibabaCloudCredentials(**{**keys, "endpoint": url, **fields})


def refused(fn: Callable[[], Any]) -> tuple[str, int]:
    """The error code and HTTP status of the ClientException a call must raise."""
    with pytest.raises(ClientException) as err:
        fn()
    return err.value.code, err.value.status_code
