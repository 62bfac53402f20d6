"""`crossdeploy automations apply`: the automations of automations.yaml, on the Prefect server.

The file is in Prefect's own automation format; its `send-notification` actions name no block,
and get the id of the notification block the operator names (`--notify <type-slug>/<name>`).
Each automation is created, or updated in place when one of that name exists: applying twice
leaves one of each, as the file says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import yaml
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

Applied = Literal["created", "updated"]


class AutomationsError(ValueError):
    """The file or the block it needs is not usable; says which and why."""


def load(path: Path, notify_block_id: UUID) -> list[AutomationCore]:
    """The file's automations, each send-notification action pointed at the block."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AutomationsError(f"{path}: {exc}") from None
    entries = data.get("automations") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise AutomationsError(f"{path}: expected a list under `automations:`")
    return [_automation(path, entry, notify_block_id) for entry in entries]


def _automation(path: Path, entry: Any, notify_block_id: UUID) -> AutomationCore:
    if not isinstance(entry, dict):
        raise AutomationsError(f"{path}: each automation is a mapping")
    actions = [
        {"block_document_id": str(notify_block_id), **action}
        if isinstance(action, dict) and action.get("type") == "send-notification"
        else action
        for action in entry.get("actions") or []
    ]
    try:
        return AutomationCore.model_validate({**entry, "actions": actions})
    except ValueError as exc:
        raise AutomationsError(f"{path}: {entry.get('name', '?')}: {exc}") from None


def notify_block_id(slug: str) -> UUID:
    """The id of the block `<block-type-slug>/<block-name>` saved on the server."""
    block_type, _, name = slug.partition("/")
    if not block_type or not name:
        raise AutomationsError(f"--notify {slug!r}: expected <block-type-slug>/<block-name>")
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type, include_secrets=False)
        except ObjectNotFound:
            raise AutomationsError(f"--notify {slug!r}: no such block on the server") from None
    return document.id


def apply(path: Path, notify: str) -> list[tuple[str, Applied]]:
    """Create or update every automation of the file by name; what happened to each."""
    automations = load(path, notify_block_id(notify))
    done: list[tuple[str, Applied]] = []
    with get_client(sync_client=True) as client:
        for automation in automations:
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
                for extra in existing[1:]:  # left by `prefect automation create` run twice
                    client.delete_automation(extra.id)
                done.append((automation.name, "updated"))
            else:
                client.create_automation(automation)
                done.append((automation.name, "created"))
    return done
