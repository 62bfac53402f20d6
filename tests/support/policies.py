"""RAM policy documents as the API takes them (JSON text): permission statements, and trust
policies that let RAM principals or services assume a role."""

from __future__ import annotations

import json
from typing import Any


def trust(
    *,
    ram: list[str] | None = None,
    service: list[str] | None = None,
    effect: str = "Allow",
    **extra: Any,
) -> str:
    principal: dict[str, list[str]] = {}
    if ram:
        principal["RAM"] = ram
    if service:
        principal["Service"] = service
    statement = {"Effect": effect, "Action": "sts:AssumeRole", "Principal": principal, **extra}
    return json.dumps({"Version": "1", "Statement": [statement]})


def statement(
    action: str | list[str], resource: str | list[str] = "*", effect: str = "Allow", **extra: Any
) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def document(*statements: dict[str, Any], version: str = "1") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def permission(*actions: str, resource: str = "*", effect: str = "Allow") -> str:
    """A one-statement permission policy."""
    return document(statement(list(actions), resource, effect))


def merged(*texts: str) -> str:
    """One document holding the statements of several (e.g. `trust(...)` results), in order."""
    return document(*(s for text in texts for s in json.loads(text)["Statement"]))
