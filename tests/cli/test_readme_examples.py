"""Every example spec and command in README.md runs as written against the bundled sandbox.

The README marks what runs with an HTML comment on the line before a fence (a reader of the
rendered page does not see it):

- `<!-- example: FILE -->`: the block is written to FILE in the working directory (a spec or a
  fleet file the commands after it use);
- `<!-- example: fragment of FILE -->`: the block merged into FILE (mappings key by key) is
  planned with `crossdeploy plan`, which must exit 0;
- `<!-- run -->`: each command, in README order, in the working directory, must exit 0:
  `crossdeploy ...` in this process (Typer's runner, the session's Prefect test server), any
  other with bash; a line ending in a backslash continues on the next.

Every other fence, and every command of a run block that cannot run here, is in NOT_RUN with the
reason. The README's addresses stand for the test's own processes (ADDRESSES): the fast sandbox
for `crossdeploy sandbox serve --port 8100`, a `crossdeploy webhook serve` child for port 8080.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli import webhook
from cli.main import app
from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.webhook_bridge import Bridge

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ACTIVATED = Path(sys.executable).parent  # what `source .venv/bin/activate` puts first on PATH

FENCE = re.compile(
    r"^ *(?:<!-- (?P<marker>[^>]*?) -->\n *)?```(?P<lang>\w*)\n(?P<body>.*?)^ *```$", re.M | re.S
)

# A fence (by its first line) or a command of a run block (as written) this test does not run.
NOT_RUN: dict[str, str] = {
    "make demo": "installs .venv and runs the demo: tests/cli/test_demo.py runs the demo",
    "source .venv/bin/activate": "the reader's shell; this test runs in the activated .venv",
    "crossdeploy sandbox serve --port 8100": "a long-running server: the session's fast "
    "sandbox stands in for it (ADDRESSES)",
    "crossdeploy sandbox serve [--world FILE] [--host 127.0.0.1] [--port 0] [--state FILE]": (
        "a long-running server (and its synopsis)"
    ),
    "prefect work-pool create crossdeploy --type process        # once per server": (
        "a Prefect server and two workers: tests/flows/test_fleet_workers.py runs a fleet "
        "across them"
    ),
    "crossdeploy demo": "starts a sandbox of its own and points the sandbox blocks at it: "
    "tests/cli/test_demo.py runs it",
    "crossdeploy deploy web.yaml api.yaml --fleet shop": "names two spec files of the reader's; "
    "tests/flows/test_fleet*.py deploy several specs as one fleet",
    "shop-web.yaml is not a valid deploy spec:": "output, not a command",
    "app.advanced.Livenes: not a CreateApplication or DeployApplication parameter "
    "(did you mean Liveness?)": "output, not a command",
    'python -c "': "a real Alibaba account's AccessKey",
    "from pydantic import SecretStr": "real accounts' credential sources; each but ECS is run "
    "against the sandbox by tests/steps/test_credential_sources.py",
    "export PREFECT_API_URL=http://prefect.internal:4200/api        "
    "# where the events go (or Prefect Cloud)": "a long-running server (the bridge) for a real "
    "Prefect server; the sample push below runs against one",
    "https://<host>/acr?token=<CROSSDEPLOY_WEBHOOK_TOKEN>": "a URL for the ACR console",
    "{": "a Prefect Cloud webhook template (needs Prefect Cloud)",
    'prefect cloud webhook create acr-image-pushed --description "ACR push triggers" '
    '--template "$(cat acr-template.json)"': "needs Prefect Cloud",
    "from crossdeploy.fleet_spec import parse_fleet": "a Python excerpt (`data` is the reader's "
    "fleet); tests/flows/test_fleet*.py call fleet_deploy",
    "pip install -e .                                       "
    "# the Python that runs `prefect deploy` and the workers": "a Prefect server and worker "
    "(tests/flows/test_e2e_prefect.py runs them)",
    "prefect deployment run cross-account-deploy/cross-account-deploy "
    "--param 'image_tag=\"1.0\"'   # JSON: quote strings": "a Prefect server and worker "
    "(tests/flows/test_e2e_prefect.py runs them)",
    "export PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="
    "prefect.server.concurrency.lease_storage.filesystem": "a long-running Prefect server",
    "FROM python:3.11-slim": "a container image build",
    'pip install "prefect[kubernetes]"                     # in the worker\'s environment': (
        "a Kubernetes cluster and worker"
    ),
    "work_pool:": "a Kubernetes work pool",
    "crossdeploy automations apply --notify slack-webhook/crossdeploy-alerts": "sends to Slack: "
    "tests/cli/test_automations.py applies automations.yaml with a saved block",
    "from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters": "Python with "
    "PORT the reader's; tests/sandbox/test_sandbox_plugin.py runs the SDK examples below",
    '{"rules": [': "a request body for POST /_sandbox/faults (tests/reliability use fault rules)",
    "ram:": "a world-file fragment (RAM users and groups): tests/sandbox/test_world_ram_users.py "
    "loads it into the demo world",
    "# test_settings_secret.py: your code, tested against the sandbox through the official "
    "SDKs.": "run as written by tests/sandbox/test_sandbox_plugin.py",
    "# check_registry_keys.py: the same sandbox outside pytest.": (
        "run as written by tests/sandbox/test_sandbox_plugin.py"
    ),
}

SANDBOX_ADDRESS = "http://127.0.0.1:8100"
BRIDGE_ADDRESS = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Fence:
    marker: str
    body: str

    @property
    def first_line(self) -> str:
        return self.body.splitlines()[0]


def fences() -> list[Fence]:
    found = FENCE.finditer(README.read_text())
    return [Fence(m["marker"] or "", textwrap.dedent(m["body"])) for m in found]


def commands(body: str) -> list[str]:
    """The block's commands: comments dropped, a line ending in a backslash or inside a quotation
    continued on the next."""
    done: list[str] = []
    pending = ""
    for line in body.splitlines():
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quotation still open at the line's end
            pending += "\n"
            continue
        command = re.sub(r"\s+# .*$", "", pending).strip()
        pending = ""
        if command and not command.startswith("#"):
            done.append(command)
    return done


def merged(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in fragment.items():
        inner = out.get(key)
        both = isinstance(inner, dict) and isinstance(value, dict)
        out[key] = merged(inner, value) if both else value  # type: ignore[arg-type]
    return out


def test_every_fence_runs_or_says_why_not() -> None:
    """A new example is run or listed here with its reason; a stale reason is an error too."""
    marked = re.compile(r"example: [\w.-]+|example: fragment of [\w.-]+|run")
    listed: set[str] = set()
    for fence in fences():
        if fence.marker:
            assert marked.fullmatch(fence.marker), fence.marker
            listed.update(c for c in commands(fence.body) if c in NOT_RUN)
        else:
            assert fence.first_line in NOT_RUN, f"README fence neither marked nor listed: {fence}"
            listed.add(fence.first_line)
    assert set(NOT_RUN) - listed == set()


@pytest.fixture
def bridge(prefect_harness: None) -> Iterator[Bridge]:
    import prefect.settings

    running = Bridge(str(prefect.settings.PREFECT_API_URL.value()), "--token", "tok-readme")
    yield running
    running.stop()


class Reader:
    """What a reader does with README.md, in a working directory of their own."""

    def __init__(self, workdir: Path, addresses: dict[str, str], env: dict[str, str]) -> None:
        self.workdir = workdir
        self.addresses = addresses
        self.env = env

    def localized(self, text: str) -> str:
        for written, actual in self.addresses.items():
            text = text.replace(written, actual)
        return text

    def write(self, name: str, body: str) -> None:
        (self.workdir / name).write_text(body)

    def run(self, command: str) -> str:
        command = self.localized(command)
        if command.startswith("crossdeploy "):
            args = shlex.split(command, comments=True)[1:]
            result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
            assert result.exit_code == 0, f"{command}\n{result.output}"
            return result.output
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.workdir,
            env={**os.environ, "PATH": f"{ACTIVATED}:{os.environ['PATH']}", **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def plan_fragment(self, base: str, fragment: str) -> None:
        data = merged(yaml.safe_load((self.workdir / base).read_text()), yaml.safe_load(fragment))
        (self.workdir / "fragment.yaml").write_text(yaml.safe_dump(data))
        self.run("crossdeploy plan fragment.yaml")


def test_the_readme_runs_as_written(
    world: SandboxAdmin,
    fast_sandbox_process: SandboxProcess,
    bridge: Bridge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every marked fence, in README order, from the Try-it-by-hand walkthrough to the sample
    ACR push, each command exiting 0."""
    import prefect.settings

    shutil.copytree(ROOT / "crossdeploy" / "specs", tmp_path / "crossdeploy" / "specs")
    monkeypatch.chdir(tmp_path)
    reader = Reader(
        tmp_path,
        {SANDBOX_ADDRESS: fast_sandbox_process.url, BRIDGE_ADDRESS: bridge.url},
        {
            webhook.TOKEN_ENV: "tok-readme",
            "PREFECT_API_URL": str(prefect.settings.PREFECT_API_URL.value()),
        },
    )
    outputs: list[str] = []
    for fence in fences():
        if fence.marker == "run":
            outputs += [reader.run(c) for c in commands(fence.body) if c not in NOT_RUN]
        elif fence.marker.startswith("example: fragment of "):
            reader.plan_fragment(fence.marker.removeprefix("example: fragment of "), fence.body)
        elif fence.marker.startswith("example: "):
            reader.write(fence.marker.removeprefix("example: "), fence.body)
    said = "\n".join(outputs)
    assert "saved block alibaba-cloud-credentials/sandbox-app" in said
    assert '"resource_id":"acr.repo.cn-hangzhou.shop/web","tag":"1.1"' in said


def test_help_names_only_files_in_the_repository() -> None:
    """`crossdeploy --help` once named a contract file that is not in the repository."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    named = re.findall(r"[\w/.-]+\.(?:md|py|yaml)\b", result.output)
    assert named, result.output
    assert [name for name in named if not (ROOT / name).exists()] == []
