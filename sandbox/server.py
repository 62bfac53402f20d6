"""Serve the sandbox with uvicorn and announce the address once it accepts connections."""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from sandbox.app import create_app
from sandbox.dispatch import Sandbox
from sandbox.store import Store
from sandbox.world import load_world


def build(world_path: Path | None, state_path: Path) -> Sandbox:
    """A sandbox over a world file (the bundled demo when None) and a state file."""
    return Sandbox(load_world(world_path), Store(state_path))


class _AnnouncingServer(uvicorn.Server):
    """Prints `sandbox listening on http://HOST:PORT` once the socket is bound and serving."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self._sock = sock

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        host, port = self._sock.getsockname()[:2]
        sys.stdout.write(f"sandbox listening on http://{host}:{port}\n")
        sys.stdout.flush()


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
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if state_path is not None:
        _serve(build(world_path, state_path), host, port)
        return
    with tempfile.TemporaryDirectory(prefix="crossdeploy-sandbox-") as scratch:
        _serve(build(world_path, Path(scratch) / "state.sqlite"), host, port)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _serve(sandbox: Sandbox, host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets created with it, and
    # without it Nagle's algorithm meets the client's delayed ACK (about 40 ms per request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        create_app(sandbox), log_level="warning", access_log=False, lifespan="off"
    )
    server = _AnnouncingServer(config, sock)
    stop = threading.Event()
    ticker = threading.Thread(target=sandbox.run_engine, args=(stop,), daemon=True)
    ticker.start()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        ticker.join(5)
        sandbox.store.close()
