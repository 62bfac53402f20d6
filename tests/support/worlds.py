"""World files for sandbox processes: the bundled demo world as data with faster timing, written
where a sandbox can load it, and a sandbox reset to its world for a test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import bundled_world_path
from tasks.change_order import PollPolicy

FAST_TIMING = {"change_order_seconds": 0.6, "minute_seconds": 0.6}
"""Change orders in 0.6 s and batch-wait minutes of 0.6 s: same rules, shorter waits."""
FAST_POLL = PollPolicy(
    first_seconds=0.05,
    initial_seconds=0.05,
    factor=1.6,
    max_seconds=0.2,
    minute_seconds=0.6,
    pipeline_after_seconds=0,
)
"""Following FAST_TIMING's change orders: reads every 0.05-0.2 s, minutes of 0.6 s."""


def demo_world_data(**timing: float) -> dict[str, Any]:
    """The bundled demo world as data, with `timing` keys overridden."""
    data: dict[str, Any] = yaml.safe_load(bundled_world_path().read_text())
    data["timing"] = {**data.get("timing", {}), **timing}
    return data


def write_world(data: dict[str, Any], directory: Path) -> Path:
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fresh_admin(process: SandboxProcess) -> Iterator[SandboxAdmin]:
    """The admin client of a sandbox just reset to its world (for function-scoped fixtures)."""
    client = SandboxAdmin(process.url)
    client.reset()
    yield client
    client.close()


def trusting(process: SandboxProcess, bundle: Path) -> SandboxProcess:
    """The process, its test CA added to the session's trusted bundle (`SSL_CERT_FILE`, the
    conftest's `trusted_cas`) before anything connects to its HTTPS listener."""
    assert process.tls_ca_out is not None
    with bundle.open("a") as trusted:
        trusted.write(process.tls_ca_out.read_text())
    return process
