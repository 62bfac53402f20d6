"""An endpoint that is not there is named at once: its address, the cause (connection refused,
TLS, timeout) and what to check; an endpoint that has answered before is retried through an
outage as before (crossdeploy/cloud.py). Every endpoint here is a socket on loopback."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from alibabacloud_sts20150401.client import Client
from alibabacloud_tea_openapi import models as open_api_models

from crossdeploy.cloud import CloudError, RetryPolicy, call
from tests.support.processes import free_port

NO_RETRY_AT_FIRST = RetryPolicy(first_contact_seconds=0.0, network_seconds=1.0)


def sts(port: int, *, protocol: str = "http", read_timeout_ms: int | None = None) -> Client:
    config = open_api_models.Config(
        access_key_id="AKID",
        access_key_secret="not-a-secret",
        endpoint=f"127.0.0.1:{port}",
        protocol=protocol,
        region_id="cn-hangzhou",
        read_timeout=read_timeout_ms,
        connect_timeout=read_timeout_ms,
    )
    return Client(config)


def failure(client: Client, retry: RetryPolicy = NO_RETRY_AT_FIRST) -> CloudError:
    with pytest.raises(CloudError) as caught:
        call("sts:GetCallerIdentity", client.get_caller_identity, retry=retry)
    return caught.value


@contextmanager
def listening(handle: socket.socket | None = None) -> Iterator[int]:
    """A loopback socket that accepts connections and, without `handle`, never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_nothing_listening_is_named_with_its_address_and_what_to_do() -> None:
    port = free_port()
    error = failure(sts(port))
    assert error.code == "" and error.unreachable is not None
    assert error.unreachable.address == f"http://127.0.0.1:{port}"
    assert error.unreachable.cause.startswith("connection refused")
    assert "crossdeploy sandbox serve" in error.unreachable.hint
    assert f"cannot reach http://127.0.0.1:{port}: connection refused" in str(error)


def test_a_certificate_this_machine_does_not_trust_is_a_tls_failure() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with socket.socket() as raw:
        raw.bind(("127.0.0.1", 0))
        raw.listen()
        port = raw.getsockname()[1]

        def handshake() -> None:
            conn, _ = raw.accept()
            with conn, pytest.raises(ssl.SSLError):
                context.wrap_socket(conn, server_side=True)

        thread = threading.Thread(target=handshake, daemon=True)
        thread.start()
        error = failure(sts(port, protocol="https"))
        thread.join(timeout=10)
    assert error.unreachable is not None
    assert error.unreachable.cause == "the TLS handshake failed"
    assert "certificate" in error.unreachable.hint


def test_an_endpoint_that_never_answers_times_out() -> None:
    with listening() as port:
        error = failure(sts(port, read_timeout_ms=300))
    assert error.unreachable is not None
    assert error.unreachable.cause == "timed out"


class _Answers404(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.dumps({"Code": "InvalidAction.NotFound", "Message": "no"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_endpoint_that_answered_before_is_retried_through_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first failure at an unknown endpoint is final (first_contact_seconds 0); once it has
    answered, the same failure is retried (for network_seconds)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers404)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    caplog.set_level(logging.WARNING, logger="crossdeploy.cloud")
    assert failure(sts(free_port())).unreachable is not None
    assert [r for r in caplog.records if "retrying" in r.message] == []

    thread.start()
    client = sts(port)
    assert failure(client).code == "InvalidAction.NotFound"  # an answer: the endpoint is there
    server.shutdown()
    server.server_close()
    thread.join()
    caplog.clear()
    error = failure(client)
    assert error.unreachable is not None and error.unreachable.cause.startswith("connection")
    assert [r for r in caplog.records if "retrying" in r.message] != []
