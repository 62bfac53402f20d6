"""Prefect blocks of sae-crossdeploy: `prefect block register -m blocks` registers both."""

from blocks.credentials import AlibabaCloudCredentials
from blocks.registry_login import AcrRegistryLogin

__all__ = ["AcrRegistryLogin", "AlibabaCloudCredentials"]
