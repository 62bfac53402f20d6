"""The sandbox cloud: a local Alibaba Cloud OpenAPI emulator that the official SDKs talk to unmodified."""
