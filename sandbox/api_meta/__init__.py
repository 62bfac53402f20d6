"""Alibaba's OpenAPI metadata for the actions the sandbox emulates, shipped as package data.

Each `<product>-<version>.json` is a trimmed copy of `data/<product>/<version>/api-docs.php` of
github.com/dew-serverless/acs-sdk-php (MIT; the commit is in the file's `source`), kept to what
request validation needs: per action its path, methods and parameters (name, in, style, schema),
plus the `components` schemas those parameters refer to. `scripts/regenerate-api-meta` rebuilds
the files; `trim` is the one definition of what is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

_ACTION_KEYS = ("path", "methods", "parameters")
_PARAMETER_KEYS = ("name", "in", "style", "schema")


def file_name(product: str, version: str) -> str:
    return f"{product}-{version}.json"


@cache
def load(product: str, version: str) -> dict[str, Any]:
    """The shipped metadata of one product version (read once)."""
    text = resources.files(__name__).joinpath(file_name(product, version)).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def trim(full: dict[str, Any], actions: Iterable[str]) -> dict[str, Any]:
    """The part of a product's full metadata that validating `actions` needs."""
    apis = {}
    for action in sorted(actions):
        api = full["apis"][action]
        kept = {key: api[key] for key in _ACTION_KEYS if key in api}
        kept["parameters"] = [
            {key: p[key] for key in _PARAMETER_KEYS if key in p} for p in api.get("parameters", [])
        ]
        apis[action] = kept
    schemas = full.get("components", {}).get("schemas", {})
    referenced = sorted(_references(apis, schemas))
    trimmed: dict[str, Any] = {"source": full["source"], "info": full["info"], "apis": apis}
    if referenced:
        trimmed["components"] = {"schemas": {name: schemas[name] for name in referenced}}
    return trimmed


def _references(value: Any, schemas: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """Names of the component schemas `value` refers to, transitively."""
    found = set() if found is None else found
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _references(schemas.get(name), schemas, found)
        for item in value.values():
            _references(item, schemas, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, schemas, found)
    return found


def dumps(data: dict[str, Any]) -> str:
    """The shipped files' exact text (stable, so a regeneration diff shows only real changes)."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
