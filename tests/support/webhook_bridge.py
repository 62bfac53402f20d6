"""`crossdeploy webhook serve` as a child process (the ACR trigger bridge, cli/webhook.py), for
the tests that post to it: tests/cli/test_webhook.py and the README's sample push."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from typing import Any

import httpx

from cli import webhook
from tests.support.processes import crossdeploy


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


LISTENING = re.compile(r"webhook listening on http://127\.0\.0\.1:(\d+)\n")


class Bridge:
    """`crossdeploy webhook serve` as a child process, with everything it printed."""

    def __init__(self, api_url: str, *args: str, env: dict[str, str] | None = None) -> None:
        child_env = {k: v for k, v in os.environ.items() if k != webhook.TOKEN_ENV}
        child_env.update(PREFECT_API_URL=api_url, PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen(
            crossdeploy("webhook", "serve", "--port", "0", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines = threading.Condition()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout)),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()
        self.url = self._wait_until_listening()
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def _pump(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._lines:
                into.append(line)
                self._lines.notify_all()

    def _wait_until_listening(self, timeout: float = 90.0) -> str:
        with self._lines:
            self._lines.wait_for(lambda: self.stdout or self.process.poll() is not None, timeout)
        ready = self.stdout[0] if self.stdout else ""
        match = LISTENING.fullmatch(ready)
        if not match:
            self.stop()
            raise AssertionError(f"bridge did not start: {ready!r} {''.join(self.stderr)[-2000:]}")
        return f"http://127.0.0.1:{match.group(1)}"

    def post(self, token: str | None, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else encode(body)
        params = {} if token is None else {"token": token}
        return self.http.post("/acr", params=params, content=content)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(30)
        for reader in self._readers:
            reader.join(10)
        if hasattr(self, "http"):
            self.http.close()
        return code

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)
