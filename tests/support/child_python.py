"""A child Python for tests that run a script or a pytest session of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A child Python as a user's shell starts it: no pytest settings of this session."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
