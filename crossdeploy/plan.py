"""The plan: one row per step, what is there now, what is wanted, and what the run will do.

Steps inspect (read and compare, no writes) and produce `PlanRow`s; the same rows render as the
CLI table and as the Prefect markdown artifact. A row whose action is BLOCKED is a precondition
the run cannot fix; its `reason` says what is wrong and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Account = Literal["A", "B"]

OK = "ok"
BLOCKED = "BLOCKED"
SKIP = "not managed"
WARNING = "warning"
"""Not a change and not blocking: something a later run would need (a plan's permissions)."""


@dataclass(frozen=True)
class PlanRow:
    step: str
    account: Account
    resource: str
    now: str
    wanted: str
    action: str
    """OK, BLOCKED, SKIP, or the change the run will make ("create", "add 47.96.10.20/32", ...)."""
    reason: str = ""
    """For BLOCKED (and notable OK rows): the cause and the fix, in words a person can act on."""

    @property
    def blocked(self) -> bool:
        return self.action == BLOCKED

    @property
    def changes(self) -> bool:
        return self.action not in (OK, BLOCKED, SKIP, WARNING)


@dataclass(frozen=True)
class Change:
    """One write the run made, for the audit event and for teardown."""

    account: Account
    resource_type: str
    """e.g. ram.role, ram.policy, ram.policy-version, ram.attachment, cr.acl-entry,
    cr.internet-endpoint, sae.secret, sae.application, sae.change-order."""
    resource_id: str
    action: str
    """created, updated, deleted, added, removed, enabled, deployed, ..."""
    detail: str = ""


@dataclass
class Plan:
    title: str
    subtitle: str
    rows: list[PlanRow] = field(default_factory=list)

    @property
    def blocked(self) -> list[PlanRow]:
        return [r for r in self.rows if r.blocked]

    @property
    def changes(self) -> list[PlanRow]:
        return [r for r in self.rows if r.changes]

    def summary(self) -> str:
        changes = self.changes
        per = {a: sum(1 for r in changes if r.account == a) for a in ("A", "B")}
        text = (
            f"{len(changes)} change{'s' if len(changes) != 1 else ''} "
            f"({per['B']} in account B, {per['A']} in account A)."
        )
        if self.blocked:
            text += f" {len(self.blocked)} blocked: the deploy cannot proceed until fixed."
        warnings = sum(1 for r in self.rows if r.action == WARNING)
        if warnings:
            text += f" {warnings} warning{'s' if warnings != 1 else ''}."
        return text

    def to_markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            self.subtitle,
            "",
            "| step | account | resource | now | wanted | action |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            cells = [row.step, row.account, row.resource, row.now, row.wanted, row.action]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        for row in self.rows:
            if row.reason:
                lines += ["", f"**{row.step} ({row.resource})**: {_cell(row.reason)}"]
        lines += ["", self.summary()]
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
