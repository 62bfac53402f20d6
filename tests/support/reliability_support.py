"""Helpers for the reliability scenarios (issue 6): what a deploy left behind, counted per kind,
and what the request log says each write call went through.

A scenario proves "exactly one of every resource and nothing extra" by comparing a census of both
accounts before and after the run: the difference must be exactly what a clean deploy adds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_API_URL

from sandbox.routes import ROUTES
from sandbox.testing import SandboxAdmin
from tests.support.deploy_support import EIP

ROOT = Path(__file__).resolve().parents[2]

WRITE_ACTIONS = tuple(sorted({(r.product.code, r.action) for r in ROUTES if r.write}))
"""(product, action) of every write the sandbox serves: a rule per action covers whatever the
flow calls, without this list having to guess which."""

RAM_ROLE_ADDS = {
    "registry:ram_role": 1,
    "registry:ram_policy": 1,
    "registry:ram_policy_version": 1,
    "registry:ram_attachment": 1,
    "registry:acl_entry": 1,
    "app:sae_app": 1,
    "app:sae_change_order": 1,
}
"""What a clean deploy of the demo spec (access ram-role) adds to the demo world."""
SECRET_ADDS = {
    "app:sae_secret": 1,
    "registry:acl_entry": 1,
    "app:sae_app": 1,
    "app:sae_change_order": 1,
}
"""What a clean deploy of the demo spec with `access.method: secret` adds."""


def census(state: dict[str, Any]) -> Counter[str]:
    """Resources per `account:kind` (policy versions and registry ACL entries counted singly)."""
    counts: Counter[str] = Counter()
    for account in ("app", "registry"):
        for kinds in state.get(account, {}).values():
            for kind, documents in kinds.items():
                counts[f"{account}:{kind}"] += len(documents)
                for document in documents.values():
                    if kind == "ram_policy":
                        counts[f"{account}:ram_policy_version"] += len(document["Versions"])
                    if kind == "acr_instance":
                        for module in document["endpoints"].values():
                            counts[f"{account}:acl_entry"] += len(module["internet"]["acl"])
    return counts


def added(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """`account:kind` -> how many more (or fewer) there are after than before; zeros left out."""
    old, new = census(before), census(after)
    return {k: new[k] - old[k] for k in sorted(set(old) | set(new)) if new[k] != old[k]}


def eip_entries(state: dict[str, Any]) -> int:
    """How many registry ACL entries admit the app's EIP (exactly one is right)."""
    instance = state["registry"]["cn-hangzhou"]["acr_instance"]["cri-demo"]
    return sum(
        a["entry"] == f"{EIP}/32" for a in instance["endpoints"]["Registry"]["internet"]["acl"]
    )


def statuses(log: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    """Write action -> the HTTP status of each of its calls, in order."""
    out: dict[str, list[int]] = {}
    for entry in log:
        if entry["write"]:
            out.setdefault(str(entry["action"]), []).append(int(entry["status"]))
    return out


def every_write(**effect: Any) -> list[dict[str, Any]]:
    """One fault rule per write action, each with `effect` (`times` counts per action)."""
    return [{"product": p, "action": a, **effect} for p, a in WRITE_ACTIONS]


def wait_for(
    what: str, admin: SandboxAdmin, seen: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """Poll the request log until `seen(log)`; the log at that moment."""
    deadline = time.monotonic() + timeout
    while True:
        log = admin.requests()
        if seen(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"the run never reached {what}: {[e['action'] for e in log]}")
        time.sleep(0.02)


def answered(action: str, status: int = 200) -> Callable[[list[dict[str, Any]]], bool]:
    """A request-log predicate: `action` was answered with `status`."""
    return lambda log: any(e["action"] == action and e["status"] == status for e in log)


DRIVER = """
import json, os, sys
from crossdeploy.spec import parse_spec
from flows.cross_account_deploy import cross_account_deploy
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        try:
            cross_account_deploy(spec=parse_spec(json.loads(line)))
        finally:
            os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class DeployDriver:
    """One process that has imported Prefect and the flows once, and forks a child per deploy
    (a fresh interpreter per crash would spend ~3 s importing Prefect each time). The deploy runs
    against this session's Prefect server (blocks must be saved); the test SIGKILLs the child as
    a crash would."""

    def __init__(self) -> None:
        api = str(PREFECT_API_URL.value())
        env = {**os.environ, "PREFECT_API_URL": api, "PYTHONUNBUFFERED": "1"}
        env["PREFECT_LOGGING_TO_API_ENABLED"] = "false"  # fewer writers on the test server
        self._process = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        assert line, f"the deploy driver ended ({self._process.poll()})"
        return line

    def start(self, spec_data: dict[str, Any]) -> int:
        """Fork a child running the deploy flow of `spec_data`; its pid."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(spec_data) + "\n")
        self._process.stdin.flush()
        return int(self._line())

    def kill(self, pid: int) -> int:
        """SIGKILL the child; its exit code (-9 when the kill ended it)."""
        os.kill(pid, signal.SIGKILL)
        return int(self._line())

    def close(self) -> None:
        self._process.kill()
        self._process.wait(10)
