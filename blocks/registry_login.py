"""A registry username and password, for the `secret` access method."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class AcrRegistryLogin(Block):
    """The login of an ACR registry in account B, stored as an SAE image-pull secret.

    Prefer the `ram-role` access method: it needs no long-lived password. Use this when the
    registry cannot be reached through a role (for example a registry you do not own).
    """

    _block_type_name = "ACR Registry Login"
    _block_type_slug = "acr-registry-login"
    _logo_url = "https://avatars.githubusercontent.com/aliyun?s=200"  # type: ignore[assignment]
    _documentation_url = (
        "https://www.alibabacloud.com/help/en/acr/user-guide/configure-access-credentials"  # type: ignore[assignment]
    )
    _code_example: ClassVar[str] = """
```python
from blocks import AcrRegistryLogin

login = AcrRegistryLogin.load("BLOCK_NAME")
```
"""

    username: str = Field(description="Registry username, e.g. the account's login name.")
    password: SecretStr = Field(description="Registry password (never logged or shown).")
