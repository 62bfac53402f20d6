"""The sandbox's HTTPS listener, for clients that speak HTTPS only (`alibabacloud-credentials`'
STS providers: `ram_role_arn`, `oidc_role_arn`).

A certificate authority is made at start by `trustme` (no crypto of ours) and written, public
certificate only, where the caller asked; only a client told to trust that file trusts the
sandbox. The same app serves both listeners, so HTTP and HTTPS see one cloud.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme
import uvicorn

TLS_LISTENING_PREFIX = "sandbox tls listening on "
"""Printed before the `sandbox listening on http://...` line, so a reader of that line has both."""

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def https_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


@contextmanager
def serving_tls(app: Any, sock: socket.socket, ca_out: Path) -> Iterator[str]:
    """Serve `app` over TLS on `sock` in a thread, with a fresh CA written to `ca_out`; yields the
    `https://HOST:PORT` address once it accepts connections, and stops it on exit."""
    ca = trustme.CA()
    host = sock.getsockname()[0]
    wildcard = ipaddress.ip_address(host).is_unspecified
    names = sorted({*_LOOPBACK_NAMES, *([] if wildcard else [host])})
    issued = ca.issue_cert(*names)
    ca.cert_pem.write_to_path(str(ca_out))
    with issued.private_key_and_cert_chain_pem.tempfile() as key_and_chain:
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=key_and_chain,
            ssl_keyfile=key_and_chain,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox-tls", daemon=True
        )
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise OSError("the sandbox's TLS listener did not start")
            thread.join(0.02)
        url = https_url_of(sock)
        sys.stdout.write(f"{TLS_LISTENING_PREFIX}{url} ca {ca_out}\n")
        sys.stdout.flush()
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(10)
