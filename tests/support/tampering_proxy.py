"""A man in the middle for signature tests: an HTTP proxy that can alter requests after signing.

The SDK under test is pointed at the proxy (`Config.endpoint = proxy.endpoint`), signs its request
for that host as usual, and the proxy forwards it to the sandbox with the same `host` header, after
letting a test change it (`tamper`) and optionally sending it more than once (`sends`, to replay
it). The last upstream reply goes back to the SDK, so the SDK's own error handling is exercised.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@dataclass
class WireRequest:
    """One request as it will be forwarded: lowercase header names, raw body bytes."""

    method: str
    path: str
    query_string: str
    """As received; rewritten only by `set_query`."""
    headers: dict[str, str]
    body: bytes = b""
    statuses: list[int] = field(default_factory=list)
    """Upstream HTTP status of each send, in order."""

    def set_query(self, name: str, value: str) -> None:
        """Replace a query parameter's value (it must be present, so a typo cannot pass)."""
        query = parse_qsl(self.query_string, keep_blank_values=True)
        if not any(k == name for k, _ in query):
            raise KeyError(name)
        self.query_string = urlencode([(k, value if k == name else v) for k, v in query])

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query_string if self.query_string else "")


Tamper = Callable[[WireRequest], None]


class TamperingProxy:
    """Forwards every request to `upstream` (a sandbox URL); use as a context manager."""

    def __init__(self, upstream: str, tamper: Tamper | None = None, *, sends: int = 1) -> None:
        self.upstream = upstream
        self.tamper = tamper
        self.sends = sends
        self.seen: list[WireRequest] = []
        """Every request as forwarded (after tampering), with its upstream statuses."""
        self._http = httpx.Client(base_url=upstream, timeout=30, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        """`host:port` of the proxy, the form `Config.endpoint` takes."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = WireRequest(
                    method=self.command,
                    path=parts.path,
                    query_string=parts.query,
                    headers={
                        k.lower(): v
                        for k, v in self.headers.items()
                        if k.lower() not in _HOP_BY_HOP
                    },
                    body=body,
                )
                try:
                    status, content_type, content = proxy.forward(request)
                except Exception as exc:  # shown to the SDK, so the failing test names it
                    error = {"Code": "TamperingProxyError", "Message": repr(exc)}
                    status, content_type = 502, "application/json"
                    content = json.dumps(error).encode()
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def do_PUT(self) -> None:
                self._relay()

            def do_DELETE(self) -> None:
                self._relay()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test output is about the sandbox, not the proxy."""

        return Handler

    def forward(self, request: WireRequest) -> tuple[int, str, bytes]:
        """Tamper, send `sends` times, and return the last reply's status, type and body."""
        if self.tamper is not None:
            self.tamper(request)
        self.seen.append(request)
        reply: httpx.Response | None = None
        for _ in range(self.sends):
            reply = self._http.request(
                request.method,
                request.target,
                headers=request.headers,
                content=request.body,
            )
            request.statuses.append(reply.status_code)
        assert reply is not None
        return reply.status_code, reply.headers.get("content-type", ""), reply.content

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
