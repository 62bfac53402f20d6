"""The sandbox cloud: a local Alibaba Cloud OpenAPI emulator for the unmodified official SDKs."""
