"""Credentials of one Alibaba Cloud account, and the official SDK clients built from them.

Keys may be long-term (access key id and secret) or temporary (plus an STS security token).
With `role_arn` set, the block first calls STS AssumeRole with those keys and acts as the role:
this is how one set of keys reaches another account. Clients are built through
`alibabacloud-credentials`, so the SDKs sign with the right credential type.

`endpoint` points every product at one address (the sandbox cloud, `http://127.0.0.1:PORT`);
`endpoints` overrides single products, for example real VPC endpoints
(`sae-vpc.cn-hangzhou.aliyuncs.com`).

SAE, VPC and CR are regional: a client acts in the region it is built for (the cloud knows it
from the endpoint host), so the flows build them with `in_region` for the region of what they act
on, whatever `region_id` says. When an endpoint override hides the region from the host name, the
clients of regional products send it in the header `x-sandbox-region` (the sandbox's rule,
shared/contracts/interfaces.md section 6; the real cloud ignores an unknown header).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

Product = Literal["sae", "ram", "vpc", "cr", "sts"]
PRODUCTS: tuple[Product, ...] = ("sae", "ram", "vpc", "cr", "sts")
REGIONAL: frozenset[Product] = frozenset({"sae", "vpc", "cr"})
"""Products whose endpoints are per region; RAM and STS are global."""
REGION_HEADER = "x-sandbox-region"

_REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class _Temporary:
    key_id: str
    secret: str
    token: str
    expires_at: float


_assumed: dict[str, _Temporary] = {}
_assumed_lock = threading.Lock()


class AlibabaCloudCredentials(CredentialsBlock):
    """Access to one Alibaba Cloud account: account A (runs SAE) or account B (owns the image)."""

    _block_type_name = "Alibaba Cloud Credentials"
    _block_type_slug = "alibaba-cloud-credentials"
    _logo_url = "https://avatars.githubusercontent.com/aliyun?s=200"  # type: ignore[assignment]
    _documentation_url = (
        "https://www.alibabacloud.com/help/en/ram/user-guide/create-an-accesskey-pair"  # type: ignore[assignment]
    )
    _code_example: ClassVar[str] = """
```python
from blocks import AlibabaCloudCredentials

credentials = AlibabaCloudCredentials.load("BLOCK_NAME")
sae = credentials.get_client("sae")
```
"""

    access_key_id: str = Field(description="AccessKey ID of a RAM user, or an STS AccessKey ID.")
    access_key_secret: SecretStr = Field(description="AccessKey secret (never logged or shown).")
    security_token: SecretStr | None = Field(
        default=None, description="STS security token, when the keys above are temporary."
    )
    role_arn: str | None = Field(
        default=None,
        description="RAM role to assume before use, acs:ram::<account>:role/<name>.",
    )
    role_session_name: str | None = Field(
        default=None, description="Session name for the assumed role; generated when empty."
    )
    external_id: str | None = Field(
        default=None, description="External ID the role's trust policy asks for, if any."
    )
    region_id: str = Field(
        default="cn-hangzhou",
        description="Default region of the clients (deploys use the region of what they act on).",
    )
    endpoint: str | None = Field(
        default=None,
        description="One endpoint for every product, e.g. http://127.0.0.1:8080 for the sandbox.",
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Per-product endpoints (keys sae, ram, vpc, cr, sts), e.g. VPC endpoints.",
    )

    def get_client(self, client_type: str) -> Any:
        """The official SDK client of a product: sae, ram, vpc, cr or sts."""
        if client_type not in PRODUCTS:
            raise ValueError(f"unknown product {client_type!r}; use one of {', '.join(PRODUCTS)}")
        return _client_class(client_type)(self._config(client_type, self._credential()))

    def in_region(self, region_id: str) -> AlibabaCloudCredentials:
        """The same credentials with clients for `region_id` (SAE, VPC and CR are regional)."""
        if region_id == self.region_id:
            return self
        return self.model_copy(update={"region_id": region_id})

    # -- internals ---------------------------------------------------------------------------

    def _address(self, product: str) -> tuple[str | None, str | None]:
        """(endpoint host[:port], protocol) for a product; (None, None) lets the SDK resolve it."""
        address = self.endpoints.get(product) or self.endpoint
        if not address:
            return None, None
        if address.startswith("http://"):
            return address.removeprefix("http://").rstrip("/"), "http"
        return address.removeprefix("https://").rstrip("/"), "https"

    def _config(self, product: str, credential: Any) -> Any:
        from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters

        endpoint, protocol = self._address(product)
        region_header = None
        if endpoint is not None and product in REGIONAL:
            region_header = GlobalParameters(headers={REGION_HEADER: self.region_id})
        return Config(
            credential=credential,
            region_id=self.region_id,
            endpoint=endpoint,
            protocol=protocol,
            global_parameters=region_header,
            read_timeout=30000,
            connect_timeout=10000,
        )

    def _base_credential(self) -> Any:
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.models import Config as CredentialConfig

        if self.security_token is not None:
            config = CredentialConfig(
                type="sts",
                access_key_id=self.access_key_id,
                access_key_secret=self.access_key_secret.get_secret_value(),
                security_token=self.security_token.get_secret_value(),
            )
        else:
            config = CredentialConfig(
                type="access_key",
                access_key_id=self.access_key_id,
                access_key_secret=self.access_key_secret.get_secret_value(),
            )
        return CredentialClient(config)

    def _credential(self) -> Any:
        if not self.role_arn:
            return self._base_credential()
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.models import Config as CredentialConfig

        temporary = self._assume_role()
        return CredentialClient(
            CredentialConfig(
                type="sts",
                access_key_id=temporary.key_id,
                access_key_secret=temporary.secret,
                security_token=temporary.token,
            )
        )

    def _cache_key(self) -> str:
        parts = [
            self.access_key_id,
            self.access_key_secret.get_secret_value(),
            self.security_token.get_secret_value() if self.security_token else "",
            self.role_arn or "",
            self.role_session_name or "",
            self.external_id or "",
            *self._address("sts"),
        ]
        return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()

    def _assume_role(self) -> _Temporary:
        """AssumeRole with the block's own keys; reused until five minutes before expiry."""
        from alibabacloud_sts20150401 import models as sts_models

        from crossdeploy.cloud import call

        key = self._cache_key()
        with _assumed_lock:
            cached = _assumed.get(key)
            if cached and cached.expires_at - _REFRESH_MARGIN_SECONDS > time.time():
                return cached
        sts = _client_class("sts")(self._config("sts", self._base_credential()))
        request = sts_models.AssumeRoleRequest(
            role_arn=self.role_arn,
            role_session_name=self.role_session_name or f"crossdeploy-{uuid.uuid4().hex[:12]}",
            external_id=self.external_id,
            duration_seconds=3600,
        )
        body = call("sts:AssumeRole", sts.assume_role, request).body
        creds = body.credentials
        expires = time.mktime(time.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        temporary = _Temporary(
            creds.access_key_id, creds.access_key_secret, creds.security_token, expires
        )
        with _assumed_lock:
            _assumed[key] = temporary
        return temporary


def _client_class(product: str) -> Any:
    if product == "sae":
        from alibabacloud_sae20190506.client import Client as SaeClient

        return SaeClient
    if product == "ram":
        from alibabacloud_ram20150501.client import Client as RamClient

        return RamClient
    if product == "vpc":
        from alibabacloud_vpc20160428.client import Client as VpcClient

        return VpcClient
    if product == "cr":
        from alibabacloud_cr20181201.client import Client as CrClient

        return CrClient
    from alibabacloud_sts20150401.client import Client as StsClient

    return StsClient
