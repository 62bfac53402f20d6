"""Credentials of one Alibaba Cloud account, and the official SDK clients built from them.

Where the credentials come from is the block's `source`, one of the sources the official
`alibabacloud-credentials` library implements (this module writes none of them):

    access_key        long-term keys (access_key_id, access_key_secret)
    sts               temporary keys with their security_token
    ram_role_arn      keys that assume role_arn (STS AssumeRole); the library refreshes the role's
                      token before it expires, so a long change order outlives any one token
    oidc_role_arn     an OIDC token file (ACK's RRSA) exchanged for role_arn (AssumeRoleWithOIDC)
    ecs_ram_role      the ECS instance's RAM role, from the instance metadata service
    credentials_uri   a local URI that serves temporary keys
    cli_profile       a profile of the aliyun CLI's config file (~/.aliyun/config.json)
    default           the library's default chain: environment variables first, then the OIDC
                      variables, the CLI profile, the credentials file, the ECS role, the URI

Left empty, `source` follows the fields, as blocks saved before it existed expect: role_arn
means ram_role_arn, a security_token sts, keys access_key, nothing the default chain. The STS
sources speak HTTPS only (the library's rule).

`endpoint` points every product at one address (the sandbox cloud, `http://127.0.0.1:PORT`);
`endpoints` overrides single products, for example real VPC endpoints
(`sae-vpc.cn-hangzhou.aliyuncs.com`) or the sandbox's HTTPS listener for STS.

SAE, VPC and CR are regional: a client acts in the region it is built for (the cloud knows it
from the endpoint host), so the flows build them with `in_region` for the region of what they act
on, whatever `region_id` says. When an endpoint override hides the region from the host name, the
clients of regional products send it in the header `x-sandbox-region` (the sandbox's rule,
shared/contracts/interfaces.md section 6; the real cloud ignores an unknown header).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, ClassVar, Literal, Self

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr, model_validator

Product = Literal["sae", "ram", "vpc", "cr", "sts"]
PRODUCTS: tuple[Product, ...] = ("sae", "ram", "vpc", "cr", "sts")
REGIONAL: frozenset[Product] = frozenset({"sae", "vpc", "cr"})
"""Products whose endpoints are per region; RAM and STS are global."""
REGION_HEADER = "x-sandbox-region"

Source = Literal[
    "access_key",
    "sts",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "credentials_uri",
    "cli_profile",
    "default",
]
NEEDS: dict[Source, tuple[str, ...]] = {
    "access_key": ("access_key_id", "access_key_secret"),
    "sts": ("access_key_id", "access_key_secret", "security_token"),
    "ram_role_arn": ("access_key_id", "access_key_secret", "role_arn"),
    "oidc_role_arn": ("role_arn", "oidc_provider_arn", "oidc_token_file"),
    "ecs_ram_role": (),
    "credentials_uri": ("credentials_uri",),
    "cli_profile": (),
    "default": (),
}
"""The fields each source cannot do without."""
STS_SOURCES: frozenset[Source] = frozenset({"ram_role_arn", "oidc_role_arn"})

_credentials: dict[str, Any] = {}
"""One library credential client per block configuration and process, so a role's token is
assumed once and refreshed by the library, not assumed again for every SDK client."""
_credentials_lock = threading.Lock()


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

    source: Source | None = Field(
        default=None,
        description="Where the credentials come from (empty: from the fields given: role_arn, "
        "security_token, keys, or else the default chain).",
    )
    access_key_id: str | None = Field(
        default=None, description="AccessKey ID of a RAM user, or an STS AccessKey ID."
    )
    access_key_secret: SecretStr | None = Field(
        default=None, description="AccessKey secret (never logged or shown)."
    )
    security_token: SecretStr | None = Field(
        default=None, description="STS security token, when the keys above are temporary."
    )
    role_arn: str | None = Field(
        default=None,
        description="RAM role to assume (ram_role_arn, oidc_role_arn), "
        "acs:ram::<account>:role/<name>.",
    )
    role_session_name: str | None = Field(
        default=None, description="Session name for the assumed role; generated when empty."
    )
    role_session_seconds: int = Field(
        default=3600,
        ge=900,
        le=43200,
        description="Lifetime of an assumed role's token (beyond 3600 s only if the role allows).",
    )
    external_id: str | None = Field(
        default=None, description="External ID the role's trust policy asks for, if any."
    )
    oidc_provider_arn: str | None = Field(
        default=None,
        description="oidc_role_arn: the RAM OIDC provider, acs:ram::<uid>:oidc-provider/<name>.",
    )
    oidc_token_file: str | None = Field(
        default=None, description="oidc_role_arn: the OIDC token file (RRSA mounts one)."
    )
    ecs_role_name: str | None = Field(
        default=None, description="ecs_ram_role: the instance's role (found when empty)."
    )
    credentials_uri: str | None = Field(
        default=None, description="credentials_uri: the URI that serves temporary keys."
    )
    profile_name: str | None = Field(
        default=None, description="cli_profile: the profile (the CLI's current one when empty)."
    )
    profile_file: str | None = Field(
        default=None, description="cli_profile: the config file (~/.aliyun/config.json)."
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

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [name for name in NEEDS[self.credential_source] if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"source {self.credential_source} needs {', '.join(missing)} "
                f"(it uses {', '.join(NEEDS[self.credential_source])})"
            )
        return self

    @property
    def credential_source(self) -> Source:
        """`source`, or the one the fields imply (blocks saved before `source` existed)."""
        if self.source is not None:
            return self.source
        if self.role_arn:
            return "ram_role_arn"
        if self.security_token is not None:
            return "sts"
        if self.access_key_id is not None or self.access_key_secret is not None:
            return "access_key"
        return "default"

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

    def _credential(self) -> Any:
        """The library's credential client for this block's source, one per configuration."""
        key = self._cache_key()
        with _credentials_lock:
            if key not in _credentials:
                _credentials[key] = self._new_credential()
            return _credentials[key]

    def _new_credential(self) -> Any:
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials.models import Config as CredentialConfig
        from alibabacloud_credentials.provider.cli_profile import CLIProfileCredentialsProvider

        # The library logs every failed refresh with a traceback to its own stderr handler (set
        # up when it is imported), then raises; the raise reaches the caller as a CloudError
        # with STS's code (crossdeploy/cloud.py), so the log lines would only repeat it.
        logging.getLogger("credentials").setLevel(logging.CRITICAL)
        source = self.credential_source
        if source == "default":
            return CredentialClient()
        if source == "cli_profile":
            return CredentialClient(
                provider=CLIProfileCredentialsProvider(
                    profile_name=self.profile_name, profile_file=self.profile_file
                )
            )
        secret = self.access_key_secret.get_secret_value() if self.access_key_secret else None
        token = self.security_token.get_secret_value() if self.security_token else None
        return CredentialClient(
            CredentialConfig(
                type=source,
                access_key_id=self.access_key_id,
                access_key_secret=secret,
                security_token=token,
                role_arn=self.role_arn,
                role_session_name=self.role_session_name,
                role_session_expiration=self.role_session_seconds,
                external_id=self.external_id,
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_token_file_path=self.oidc_token_file,
                role_name=self.ecs_role_name,
                credentials_uri=self.credentials_uri,
                sts_endpoint=self._sts_endpoint() if source in STS_SOURCES else None,
            )
        )

    def _sts_endpoint(self) -> str | None:
        """The STS host the library assumes roles at (HTTPS only), None for the region's own."""
        host, protocol = self._address("sts")
        if host is not None and protocol != "https":
            raise ValueError(
                f"source {self.credential_source} reaches STS over HTTPS only, but the block "
                f"points STS at http://{host}; set endpoints.sts to an https:// address"
            )
        return host

    def _cache_key(self) -> str:
        """Every field that makes the credential, secrets included, hashed."""
        values = self.model_dump(exclude={"region_id", "endpoint", "endpoints"})
        values["_sts"] = self._address("sts")
        for name in ("access_key_secret", "security_token"):
            secret = getattr(self, name)
            values[name] = secret.get_secret_value() if secret is not None else None
        return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()


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
