"""Ctrl-C and SIGTERM during a CLI run: the run stops within seconds and says so in one line.

The flow engine turns the interrupt into a Crashed flow run (its reason as the state message)
and the app lock is released on the way out; the CLI's own temporary Prefect server, which the
terminal's signal does not reach, is stopped after that (cli/temporary_server.py). Nothing is
left running, and the line says what to run next: every step writes only what differs and the
ledger holds what was written ahead, so running the same command again converges.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from prefect.exceptions import TerminationSignal
from rich.console import Console

from cli.temporary_server import prefect_api
from crossdeploy import in_flight

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Received:
    """The signal that interrupted the run, remembered when it arrives: the exception it raises
    can surface wrapped in another (pydantic turns a KeyboardInterrupt raised while Prefect
    serialises its settings into a PydanticSerializationError), so the exception type alone
    does not say whether the run was interrupted."""

    def __init__(self) -> None:
        self.signum: signal.Signals | None = None
        self.doing: list[str] = []
        """What was in progress when it arrived (before the run unwinds)."""

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.signum, self.doing = signal.Signals(signum), self.doing or in_flight.snapshot()
        raise KeyboardInterrupt

    def terminate(self, signum: int, frame: FrameType | None) -> None:
        self.signum, self.doing = signal.Signals(signum), self.doing or in_flight.snapshot()
        raise TerminationSignal(signum)


AT = "{at}"
"""Where the `afterwards` text names what was in progress: ` (at: apply whitelist)`."""


@contextmanager
def interruptible(out: Console, afterwards: str) -> Iterator[None]:
    """Run the block against the CLI's Prefect API; on Ctrl-C or SIGTERM print
    `Interrupted by <signal> <afterwards>` and exit 130 or 143."""
    received = _Received()
    previous_int = signal.signal(signal.SIGINT, received.interrupt)
    previous_term = signal.signal(signal.SIGTERM, received.terminate)
    try:
        with prefect_api(lambda line: out.print(line, markup=False, style="dim")):
            yield
    except (KeyboardInterrupt, TerminationSignal, Exception):
        if received.signum is None:
            raise
        signum = received.signum
        cause = "Ctrl-C" if signum == signal.SIGINT else signum.name
        at = f" (at: {', '.join(received.doing)})" if received.doing else ""
        line = f"Interrupted by {cause} {afterwards.replace(AT, at)}"
        out.print(line, markup=False, soft_wrap=True, style="red")
        raise typer.Exit(EXIT_CODES.get(signum, 130)) from None
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def after_deploy(name: str, command: str, undo: str) -> str:
    return (
        f"while deploying {name}{AT}: the run stopped, its flow run is marked Crashed and its app "
        "lock released; what it wrote is in the ledger and nothing after it was done. Run "
        f"`crossdeploy {command}` again to finish, or {undo} to undo."
    )


def after_plan() -> str:
    return f"while planning{AT}: nothing was changed."


def after_teardown(name: str, command: str) -> str:
    return (
        f"while tearing down {name}{AT}: the run stopped, its flow run is marked Crashed and its "
        "app lock released; what it removed is off the ledger, the rest is still there. Run "
        f"`crossdeploy {command}` again to finish."
    )
