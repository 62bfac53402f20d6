"""sae-crossdeploy: deploy SAE apps in one Alibaba Cloud account from another account's ACR images."""

__version__ = "0.1.0"
