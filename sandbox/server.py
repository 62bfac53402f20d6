"""Serve the sandbox with uvicorn and announce the address once it accepts connections."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from sandbox.app import create_app
from sandbox.dispatch import Sandbox
from sandbox.serving import bind, exit_on_sigterm, run
from sandbox.store import Store
from sandbox.world import load_world


def build(world_path: Path | None, state_path: Path) -> Sandbox:
    """A sandbox over a world file (the bundled demo when None) and a state file."""
    return Sandbox(load_world(world_path), Store(state_path))


def serve(
    *,
    world_path: Path | None,
    host: str,
    port: int,
    state_path: Path | None,
) -> None:
    """Run until SIGINT/SIGTERM; without a state file, use a temporary one removed at exit."""
    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind (running the cleanup
    # below) instead of killing the process where it stands.
    exit_on_sigterm()
    if state_path is not None:
        _serve(build(world_path, state_path), host, port)
        return
    with tempfile.TemporaryDirectory(prefix="crossdeploy-sandbox-") as scratch:
        _serve(build(world_path, Path(scratch) / "state.sqlite"), host, port)


def _serve(sandbox: Sandbox, host: str, port: int) -> None:
    sock = bind(host, port)
    stop = threading.Event()
    ticker = threading.Thread(target=sandbox.run_engine, args=(stop,), daemon=True)
    ticker.start()
    try:
        run(create_app(sandbox), sock, "sandbox listening on")
    finally:
        stop.set()
        ticker.join(5)
        sandbox.store.close()
