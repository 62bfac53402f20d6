"""What the CLI prints: the plan table, progress lines and the outcome, via rich."""

from __future__ import annotations

import shutil

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crossdeploy.plan import BLOCKED, OK, Plan


def console() -> Console:
    """Rich console; 140 columns when the output is not a terminal (logs, pipes, CI)."""
    width = shutil.get_terminal_size((140, 40)).columns
    return Console(emoji=False, highlight=False, width=max(width, 100))


def print_plan(out: Console, plan: Plan) -> None:
    out.print(Text(plan.title, style="bold"))
    out.print(plan.subtitle)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("step", "account", "resource", "now", "wanted", "action"):
        table.add_column(column, overflow="fold")
    for row in plan.rows:
        style = "red bold" if row.action == BLOCKED else ("green" if row.action == OK else "yellow")
        table.add_row(
            row.step, row.account, row.resource, row.now, row.wanted, Text(row.action, style=style)
        )
    out.print(table)
    for row in plan.blocked:
        out.print(Text(f"  → {row.step}: {row.reason}", style="red"))
    out.print(plan.summary())
