"""sae-crossdeploy: deploy SAE apps in one account from another account's ACR images."""

__version__ = "0.1.0"
