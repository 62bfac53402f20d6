"""Credential blocks that point at a sandbox cloud, one per world account."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from blocks import AlibabaCloudCredentials
from sandbox.world import load_world


def sandbox_block_name(account: str, prefix: str = "sandbox") -> str:
    return f"{prefix}-{account}"


def save_sandbox_blocks(
    url: str, world_path: Path | None = None, *, prefix: str = "sandbox"
) -> list[str]:
    """Save (overwrite) `<prefix>-<account>` blocks with each account's first access key
    (another prefix for each of several sandboxes, as the benchmarks run them)."""
    world = load_world(world_path)
    names = []
    for account in world.accounts:
        key = account.access_keys[0]
        block = AlibabaCloudCredentials(
            access_key_id=key.id,
            access_key_secret=SecretStr(key.secret),
            endpoint=url,
            region_id=next(iter(world.regions), "cn-hangzhou"),
        )
        name = sandbox_block_name(account.name, prefix)
        block.save(name, overwrite=True)
        names.append(name)
    return names
