"""`crossdeploy plan / deploy / teardown` as a user runs them (contract: interfaces.md section 1),
in-process with Typer's runner, against the fast sandbox and the session's Prefect test server."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from sandbox.testing import SandboxAdmin
from tests.support.deploy_support import EIP, flow_runs_since, normalized, write_spec
from tests.support.specs import spec_data
from tests.support.terminal import crossdeploy_in_terminal


def crossdeploy(*args: str) -> Result:
    """Run the CLI in this process, 200 columns wide so table rows stay on one line."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def spec_file(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    return write_spec(tmp_path / "shop-web.yaml", spec_data(**sections))


def words(text: str) -> str:
    """Whitespace collapsed, so a reason rich wrapped over lines reads as one sentence."""
    return " ".join(text.split())


def test_plan_prints_the_table_and_exits_0(world: SandboxAdmin, tmp_path: Path) -> None:
    """Every step with its account and action; exit 0; no write call."""
    result = crossdeploy("plan", str(spec_file(tmp_path)))
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        "Deploy shop-web (cn-hangzhou:demo) from "
        "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1" in out
    )
    assert "account A 1111111111111111 (sandbox-app)" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["step"][:6] == ["step", "account", "resource", "now", "wanted", "action"]
    assert lines["whitelist"][1] == "B" and lines["whitelist"][-2:] == ["add", f"{EIP}/32"]
    assert lines["role"][1] == "B" and lines["role"][-1] == "create"
    assert lines["policy"][-3:] == ["create", "+", "attach"]
    assert lines["app"][1] == "A" and lines["app"][-1] == "create"
    assert lines["network"][-1] == "ok" and lines["image"][-1] == "ok"
    assert "4 changes (3 in account B, 1 in account A)." in out
    assert world.writes() == []


def test_plan_exits_1_when_blocked(
    world: SandboxAdmin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A namespace without egress: the row is BLOCKED, the reason is printed, exit 1. It is an
    expected failure, so no log record carries a traceback to the console (interfaces.md 1)."""
    path = spec_file(tmp_path, app={"namespace": "cn-hangzhou:isolated"})
    result = crossdeploy("plan", str(path))
    assert [r.getMessage()[:60] for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert "BLOCKED" in result.output
    assert (
        "→ network: vsw-app-b (172.16.2.0/24) has no way to the internet, so SAE cannot reach "
        "demo-registry.cn-hangzhou.cr.aliyuncs.com." in words(result.output)
    )
    assert "The plan is blocked; nothing was changed." in result.output
    assert world.writes() == []


def test_a_blocked_plan_in_a_terminal_prints_its_reason_once_without_traceback(
    world: SandboxAdmin, tmp_path: Path
) -> None:
    """All the terminal shows (Prefect's log lines too): no traceback, the reason once, as the
    last lines."""
    from prefect.settings import PREFECT_API_URL

    path = spec_file(tmp_path, app={"namespace": "cn-hangzhou:isolated"})
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"}
    ended = crossdeploy_in_terminal(["plan", str(path)], env=env)
    assert ended.exit_code == 1, ended.output
    assert "Traceback" not in ended.output
    assert "unexpected exception" not in ended.output
    printed = words(ended.output.split("\nThe plan is blocked; nothing was changed.\n")[-1])
    assert printed.startswith("network: vsw-app-b (172.16.2.0/24) has no way to the internet")
    assert printed.endswith("Fix the NAT gateway / SNAT entry, or pull over the VPC domain.")
    assert ended.output.count("\nThe plan is blocked; nothing was changed.\n") == 1


INVALID = """\
accounts: {app: sandbox-app, registry: sandbox-registry}
app: {name: Shop_Web, region: cn-hangzhou, cpu: 500, memory: 8192}
image: {url: "registry.cn-hangzhou.aliyuncs.com/shop-personal/web:1.0", instance_id: cri-demo}
"""


@pytest.mark.parametrize("command", ["plan", "deploy", "teardown"])
def test_an_invalid_spec_lists_every_problem_and_exits_2(
    world: SandboxAdmin, tmp_path: Path, command: str
) -> None:
    """Each problem on its own line with its field path; exit 2; no API call, no flow run."""
    path = tmp_path / "shop-web.yaml"
    path.write_text(INVALID)
    started = datetime.now(UTC)
    result = crossdeploy(command, str(path))
    assert result.exit_code == 2, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0] == f"{path} is not a valid deploy spec:"
    assert [line.split(":")[0] for line in lines[1:] if line] == [
        "app.name",
        "app.memory",
        "image.instance_id",
    ]
    assert (
        "app.memory: 8192 MiB is not offered with app.cpu 500; with 500 millicores choose "
        "1024 or 2048" in lines
    )
    assert (
        "image.instance_id: given, but registry.cn-hangzhou.aliyuncs.com is a Personal Edition "
        "address (omit it)" in lines
    )
    assert lines[1].startswith("app.name: 'Shop_Web' must be 1-36 lowercase letters")
    assert world.requests() == []
    assert flow_runs_since(started) == []


def test_deploy_dry_run_writes_nothing(world: SandboxAdmin, tmp_path: Path) -> None:
    """`deploy --dry-run` reads both accounts, writes nothing, exits 0."""
    result = crossdeploy("deploy", "--dry-run", str(spec_file(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing changed." in result.output
    assert world.requests() and world.writes() == []


def test_deploy_then_teardown_round_trip(world: SandboxAdmin, tmp_path: Path) -> None:
    """deploy exits 0 with the app running; teardown exits 0 and leaves both accounts as they
    were before the deploy."""
    path = spec_file(tmp_path)
    before = normalized(world.state())
    deployed = crossdeploy("deploy", str(path))
    assert deployed.exit_code == 0, deployed.output
    assert "shop-web is RUNNING: 2 of 2 instances running" in deployed.output
    removed = crossdeploy("teardown", str(path))
    assert removed.exit_code == 0, removed.output
    assert "Removed 5 change(s) of shop-web." in removed.output
    assert normalized(world.state()) == before
