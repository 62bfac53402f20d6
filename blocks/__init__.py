"""Prefect blocks of sae-crossdeploy, registered by the `prefect.collections` entry point in
pyproject.toml when Prefect starts (or by hand: `prefect block register -m blocks`)."""

from blocks.credentials import AlibabaCloudCredentials
from blocks.registry_login import AcrRegistryLogin

__all__ = ["AcrRegistryLogin", "AlibabaCloudCredentials"]
