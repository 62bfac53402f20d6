"""Ctrl-C and SIGTERM during `crossdeploy deploy`, as a person at a terminal sends them: the CLI
runs in a pseudo-terminal (its own session, so the interrupt character reaches its whole
foreground process group, as from a terminal). After each: the CLI ended within seconds with one
line and no traceback, nothing of its process group is left, its flow run is Crashed with the
reason, and a deploy started right after neither waits for the app lock nor fails: it converges,
and teardown afterwards leaves the world as it was."""

from __future__ import annotations

import io
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from prefect import get_client
from prefect.settings import PREFECT_API_URL
from rich.console import Console

from cli.interrupt import after_plan, interruptible
from sandbox.testing import SandboxAdmin
from tests.support.deploy_support import flow_runs_since, normalized, write_spec
from tests.support.specs import spec_data
from tests.support.terminal import crossdeploy_in_terminal

STOPPED_WITHIN = 10.0
"""Seconds from the signal to the CLI's exit (the run marks itself over, frees its lock)."""


def group_is_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def cli_env(world: SandboxAdmin) -> dict[str, str]:
    """The session's Prefect server and sandbox CAs, as the in-process tests have them."""
    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"}


def crashed_reasons(since: datetime) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(run_id) for run_id in flow_runs_since(since)]
    return [f"{run.state_name}: {run.state.message}" for run in runs if run.state is not None]


CASES = [
    # (where, what the output shows when the signal is sent, how, what the line says was cut off)
    ("inspection", "inspect image of shop-web", "ctrl-c", "inspect role"),
    ("apply", "changes (3 in account B, 1 in account A)", "sigterm", ""),
    ("following the change order", "batch 1 of 1", "ctrl-c", "follow change order "),
]


@pytest.mark.parametrize(("where", "signal_at", "how", "at"), CASES)
def test_interrupted_deploy_stops_at_once_and_the_next_one_converges(
    world: SandboxAdmin,
    cli_env: dict[str, str],
    tmp_path: Path,
    where: str,
    signal_at: str,
    how: str,
    at: str,
) -> None:
    spec = write_spec(tmp_path / "shop-web.yaml", spec_data())
    world.set_faults({"action": "GetRole", "latency_ms": 1500})  # inspection takes a while
    world.set_timing(change_order_seconds=8)
    before = normalized(world.state())
    since = datetime.now(UTC)

    ended = crossdeploy_in_terminal(
        ["deploy", str(spec)], env=cli_env, signal_at=signal_at, how=how
    )

    cause = "Ctrl-C" if how == "ctrl-c" else "SIGTERM"
    assert ended.seconds_after_signal is not None, ended.output
    assert ended.seconds_after_signal < STOPPED_WITHIN, ended.output
    assert ended.exit_code == (130 if how == "ctrl-c" else 143), ended.output
    assert "Traceback" not in ended.output, ended.output
    interrupted = [line for line in ended.output.splitlines() if line.startswith("Interrupted")]
    assert len(interrupted) == 1, ended.output
    head, _, tail = interrupted[0].partition(": the run stopped")
    assert head.startswith(f"Interrupted by {cause} while deploying shop-web"), ended.output
    assert at in head, ended.output  # what was in progress when the signal came, if anything
    assert tail == (
        ", its flow run is marked Crashed and its app lock released; what it wrote is in the "
        f"ledger and nothing after it was done. Run `crossdeploy deploy {spec}` again to finish, "
        f"or `crossdeploy teardown {spec}` to undo."
    ), ended.output
    assert group_is_gone(ended.group), ended.output
    reason = "an interrupt" if how == "ctrl-c" else "a termination"
    assert crashed_reasons(since) == [f"Crashed: Execution was aborted by {reason} signal."]

    world.clear_faults()
    world.set_timing(change_order_seconds=0.6)
    again = crossdeploy_in_terminal(["deploy", str(spec)], env=cli_env)
    assert again.exit_code == 0, again.output
    assert "waiting for another run" not in again.output
    assert (  # interrupted while following: the change order it started went on meanwhile
        "shop-web is RUNNING" in again.output or "shop-web already matches the spec" in again.output
    ), again.output
    removed = crossdeploy_in_terminal(["teardown", str(spec)], env=cli_env)
    assert removed.exit_code == 0, removed.output
    assert normalized(world.state()) == before, where


def test_ctrl_c_leaves_no_temporary_server_behind(tmp_path: Path) -> None:
    """Without PREFECT_API_URL the CLI starts its own temporary Prefect server, in a session of
    its own: Ctrl-C reaches the CLI only, which stops the server before it exits."""
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "COLUMNS": "200"}
    spec = write_spec(tmp_path / "shop-web.yaml", spec_data())

    ended = crossdeploy_in_terminal(
        ["plan", str(spec)], env=env, signal_at="Started a temporary Prefect server"
    )

    assert ended.seconds_after_signal is not None, ended.output
    assert ended.seconds_after_signal < STOPPED_WITHIN, ended.output
    assert ended.exit_code == 130, ended.output
    assert "Traceback" not in ended.output, ended.output
    assert [line for line in ended.output.splitlines() if line.startswith("Interrupted")] == [
        "Interrupted by Ctrl-C while planning: nothing was changed."
    ], ended.output
    assert group_is_gone(ended.group), ended.output
    assert processes_with(f"PREFECT_HOME={home}") == [], ended.output


def processes_with(variable: str) -> list[int]:
    """The processes whose environment has `variable` (NAME=value)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, gone, or not ours
            continue
        if variable.encode() in environ:
            found.append(int(entry.name))
    return found


def _interrupted_while_serialising() -> None:
    """What pydantic does with a KeyboardInterrupt raised while Prefect serialises its settings:
    it surfaces wrapped in another exception."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling function `_ser_model`: KeyboardInterrupt") from exc


def test_an_interrupt_wrapped_in_another_error_still_ends_in_one_line(
    prefect_harness: None,
) -> None:
    written = io.StringIO()
    out = Console(file=written, width=200)

    with pytest.raises(typer.Exit) as ended, interruptible(out, after_plan()):
        _interrupted_while_serialising()

    assert ended.value.exit_code == 130
    assert written.getvalue() == "Interrupted by Ctrl-C while planning: nothing was changed.\n"


def test_an_error_without_an_interrupt_is_not_taken_for_one(prefect_harness: None) -> None:
    written = io.StringIO()
    out = Console(file=written, width=200)

    with pytest.raises(RuntimeError, match="not an interrupt"), interruptible(out, after_plan()):
        raise RuntimeError("not an interrupt")

    assert written.getvalue() == ""
