"""What the CLI prints: the plan table, progress lines and the outcome, via rich."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crossdeploy.plan import BLOCKED, OK, WARNING, Plan
from crossdeploy.spec import DeploySpec

if TYPE_CHECKING:
    from flows.permissions import RequiredPermissions


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
    for row in plan.rows:
        if row.blocked or row.action == WARNING:
            style = "red" if row.blocked else "yellow"
            out.print(Text(f"  → {row.step}: {row.reason}", style=style))
    out.print(plan.summary())


_PHASE_WORDS = {"deploy": "deploy", "plan": "plan (--plan-only)", "teardown": "tear down"}


def print_permissions(out: Console, required: RequiredPermissions, spec: DeploySpec) -> None:
    """Each account's policy, pretty JSON, under who acts there (a root needs none itself)."""
    out.print(
        Text(
            f"Least-privilege RAM policies to {_PHASE_WORDS[required.phase]} {spec.app.name}",
            style="bold",
        )
    )
    out.print(
        "Create each as a custom policy in its account (RAM console > Policies > Create Policy "
        "> JSON) and attach it to the identity that account's block acts as.",
        markup=False,
    )
    blocks = {"app": spec.accounts.app, "registry": spec.accounts.registry}
    for field, letter in (("app", "A"), ("registry", "B")):
        arn = required.identities[field]
        out.print()
        out.print(
            Text(
                f"Account {letter} {required.uids[field]} (block {blocks[field]}) acts as {arn}",
                style="bold",
            )
        )
        if arn.endswith(":root"):
            out.print(
                "  That is the account's root, which may do anything: give this policy to a RAM "
                "user or role and use its keys instead.",
                markup=False,
                style="yellow",
            )
        out.print(json.dumps(required.policies[field], indent=2), markup=False, highlight=False)
