"""Serve an ASGI app with uvicorn on a socket bound up front; announce it once it serves.

Shared by `crossdeploy webhook serve` and the sandbox's `crossdeploy sandbox serve`: both bind
first (so `--port 0` resolves to a real port before anything else happens), then print one
`<what> listening on http://HOST:PORT` line on stdout only when uvicorn accepts connections,
which is what scripts and tests wait for.
"""

from __future__ import annotations

import signal
import socket
import sys
from types import FrameType
from typing import Any, Literal

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port); port 0 picks a free one. Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets created with it, and
    # without it Nagle's algorithm meets the client's delayed ACK (about 40 ms per request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """`http://HOST:PORT` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class AnnouncingServer(uvicorn.Server):
    """Prints `<prefix> http://HOST:PORT` once the socket is bound and serving."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, prefix: str) -> None:
        super().__init__(config)
        self._sock = sock
        self._prefix = prefix

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:  # the app's lifespan startup failed: never claim to listen
            return
        sys.stdout.write(f"{self._prefix} {url_of(self._sock)}\n")
        sys.stdout.flush()


def run(
    app: Any,
    sock: socket.socket,
    prefix: str,
    *,
    lifespan: Literal["on", "off"] = "off",
) -> None:
    """Serve `app` on `sock` until SIGINT/SIGTERM (uvicorn finishes in-flight requests first)."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    AnnouncingServer(config, sock, prefix).run(sockets=[sock])


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind as `SystemExit(0)` (running `finally` blocks) instead of killing.

    uvicorn captures SIGTERM while serving, shuts down gracefully, then re-raises the signal;
    this handler turns that re-raise into a clean exit.
    """
    signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
