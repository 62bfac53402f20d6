"""A credentials URI on loopback: temporary keys served as `alibabacloud-credentials`'
`credentials_uri` source reads them (Code, AccessKeyId, AccessKeySecret, SecurityToken,
Expiration)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Serves(BaseHTTPRequestHandler):
    def __init__(self, body: bytes, *args: Any) -> None:
        self.body = body
        super().__init__(*args)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(credentials: Any) -> Iterator[str]:
    """The URI of a local server answering with these STS credentials (AssumeRole's
    `Credentials`), for as long as the context lasts."""
    body = json.dumps(
        {
            "Code": "Success",
            "AccessKeyId": credentials.access_key_id,
            "AccessKeySecret": credentials.access_key_secret,
            "SecurityToken": credentials.security_token,
            "Expiration": credentials.expiration,
        }
    ).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Serves, body))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/credentials"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
