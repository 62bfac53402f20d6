"""Serve the sandbox with uvicorn and announce the address once it accepts connections; with
`Tls`, also over HTTPS (sandbox/tls.py)."""

from __future__ import annotations

import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from sandbox.app import create_app
from sandbox.dispatch import Sandbox
from sandbox.serving import bind, exit_on_sigterm, run
from sandbox.store import Store
from sandbox.tls import serving_tls
from sandbox.world import load_world


def build(world_path: Path | None, state_path: Path) -> Sandbox:
    """A sandbox over a world file (the bundled demo when None) and a state file."""
    return Sandbox(load_world(world_path), Store(state_path))


@dataclass(frozen=True)
class Tls:
    """Also serve HTTPS on `port` (0: a free one), with a test CA written to `ca_out`."""

    port: int
    ca_out: Path


def serve(
    *,
    world_path: Path | None,
    host: str,
    port: int,
    state_path: Path | None,
    tls: Tls | None = None,
) -> None:
    """Run until SIGINT/SIGTERM; without a state file, use a temporary one removed at exit."""
    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind (running the cleanup
    # below) instead of killing the process where it stands.
    exit_on_sigterm()
    if state_path is not None:
        _serve(build(world_path, state_path), host, port, tls)
        return
    with tempfile.TemporaryDirectory(prefix="crossdeploy-sandbox-") as scratch:
        _serve(build(world_path, Path(scratch) / "state.sqlite"), host, port, tls)


def _serve(sandbox: Sandbox, host: str, port: int, tls: Tls | None) -> None:
    sock = bind(host, port)
    tls_sock = bind(host, tls.port) if tls is not None else None
    stop = threading.Event()
    ticker = threading.Thread(target=sandbox.run_engine, args=(stop,), daemon=True)
    ticker.start()
    app = create_app(sandbox)
    try:
        with ExitStack() as listeners:
            if tls is not None and tls_sock is not None:
                listeners.enter_context(serving_tls(app, tls_sock, tls.ca_out))
            run(app, sock, "sandbox listening on")
    finally:
        stop.set()
        ticker.join(5)
        sandbox.store.close()
