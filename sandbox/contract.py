"""Every API request checked against Alibaba's published contract before its handler runs.

The contract is the OpenAPI metadata shipped in `sandbox/api_meta/` (per action: methods, path and
parameters with position, style and schema). The gateway's answers, from `sandbox/errors.py`:

- a method the action does not allow: 404 `InvalidAction.NotFound`, whose documented message is
  "Specified api is not found, please check your url and method" (unknown actions and ROA paths
  get the same answer in `dispatch`);
- a required parameter absent or empty: 400 `MissingParameter`;
- a value outside its type, enum, range, length, pattern or item count, or a known parameter in a
  position the action does not read (query vs body): 400 `InvalidParameter`.

Every refusal names the parameter. A parameter the metadata does not know is dropped, as the
gateway drops it, and its wire name is reported in `ignored` (the request log shows it).

How the official SDKs put parameters on the wire (reference 1.2, and each product's
`*_with_options`): `in: query` in the query string; `in: formData` / `in: body` in the body (form
encoded, or JSON for ROA JSON bodies); style `json` as one JSON text; styles `repeatList` and
`flat` as `Name.1`, `Name.1.Key`, ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox import api_meta
from sandbox.errors import ApiError, invalid_parameter, missing_parameter, not_found_action
from sandbox.wire import RPC_COMMON_PARAMS, Identified, RawRequest

Schema = dict[str, Any]

REQUIRED_BY_REFERENCE: dict[tuple[str, str], frozenset[str]] = {
    ("ram", action): frozenset(names.split())
    for action, names in {
        "CreateRole": "RoleName AssumeRolePolicyDocument",
        "GetRole": "RoleName",
        "UpdateRole": "RoleName",
        "DeleteRole": "RoleName",
        "CreatePolicy": "PolicyName PolicyDocument",
        "GetPolicy": "PolicyName PolicyType",
        "GetPolicyVersion": "PolicyName PolicyType VersionId",
        "CreatePolicyVersion": "PolicyName PolicyDocument",
        "ListPolicyVersions": "PolicyName PolicyType",
        "DeletePolicyVersion": "PolicyName VersionId",
        "SetDefaultPolicyVersion": "PolicyName VersionId",
        "DeletePolicy": "PolicyName",
        "AttachPolicyToRole": "PolicyType PolicyName RoleName",
        "DetachPolicyFromRole": "PolicyType PolicyName RoleName",
        "ListPoliciesForRole": "RoleName",
        "ListEntitiesForPolicy": "PolicyName PolicyType",
        "ListPoliciesForUser": "UserName",
        "ListGroupsForUser": "UserName",
        "ListPoliciesForGroup": "GroupName",
    }.items()
}
"""RAM's metadata marks every parameter optional (api-meta README); its required parameters are
those of the API reference and the SDK models (reference 3.2, sources S5 and S12; the user and
group reads' "必填: 是" on https://help.aliyun.com/document_detail/28732.html, .../28733.html and
https://help.aliyun.com/zh/ram/developer-reference/api-ram-2015-05-01-listgroupsforuser)."""

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_INTEGER = re.compile(r"-?\d{1,19}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_BOOLEANS = {"true": True, "false": False}
"""The Python SDKs send booleans as `True`/`False` (reference 1.2): compared case-insensitively."""
_ELEMENT = re.compile(r"(?P<base>[^.]+)\.(?P<index>[^.]+)(?:\.(?P<member>.+))?")


@dataclass
class Checked:
    """A request that meets the contract: its values by parameter name, typed, and the rest."""

    wire: dict[str, str] = field(default_factory=dict)
    """Known parameters as sent (top-level ones), for logs and text getters."""
    typed: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Parameter:
    name: str
    position: str
    """`query` or `body` (formData and body both arrive in the request body)."""
    style: str
    schema: Schema
    required: bool


class Action:
    """One action's contract: methods, and its parameters by name."""

    def __init__(self, product: str, name: str, api: dict[str, Any], schemas: Schema) -> None:
        self.product = product
        self.name = name
        self.methods = frozenset(m.upper() for m in api.get("methods", []))
        self.path: str | None = api.get("path")
        required = REQUIRED_BY_REFERENCE.get((product, name), frozenset())
        self.parameters: dict[str, Parameter] = {}
        for p in api.get("parameters", []):
            schema = _resolve(p.get("schema", {}), schemas)
            self.parameters[p["name"]] = Parameter(
                name=p["name"],
                position="query" if p["in"] == "query" else "body",
                style=p.get("style", ""),
                schema=schema,
                required=bool(schema.get("required")) or p["name"] in required,
            )

    def check(self, method: str, sent: Iterable[tuple[str, str, str]]) -> Checked:
        """The parameters `received` found in a request by `method`, validated and typed;
        ApiError for the first refusal."""
        if method.upper() not in self.methods:
            raise not_found_action(f"{self.name} ({method.upper()})")
        checked = Checked()
        elements: dict[str, dict[int, Any]] = {}
        for position, key, value in sent:
            parameter = self.parameters.get(key)
            if parameter is not None and parameter.style not in ("repeatList", "flat"):
                _position(parameter, position)
                if key in checked.wire:
                    raise invalid_parameter(key, "the parameter is given more than once")
                checked.wire[key] = value
                if value != "":
                    checked.typed[key] = _scalar_or_json(key, value, parameter)
                continue
            element = _ELEMENT.fullmatch(key)
            listed = self.parameters.get(element["base"]) if element else None
            if element is None or listed is None or listed.style not in ("repeatList", "flat"):
                checked.ignored.append(key)
                continue
            _position(listed, position)
            checked.wire[key] = value
            if not element["index"].isdigit() or int(element["index"]) < 1:
                raise invalid_parameter(key, "list items are numbered from 1")
            index = int(element["index"])
            items = listed.schema.get("items", {})
            member = element["member"]
            if member is None:
                elements.setdefault(listed.name, {})[index] = _scalar(key, value, items)
                continue
            member_schema = items.get("properties", {}).get(member)
            if member_schema is None:
                checked.ignored.append(key)
                continue
            entry = elements.setdefault(listed.name, {}).setdefault(index, {})
            if not isinstance(entry, dict):
                raise invalid_parameter(key, f"{listed.name}.{index} is not an object")
            entry[member] = _scalar(key, value, member_schema)
        for name, by_index in elements.items():
            checked.typed[name] = [by_index[i] for i in sorted(by_index)]
            _items(name, checked.typed[name], self.parameters[name].schema)
        for parameter in self.parameters.values():
            if parameter.required and parameter.name not in checked.typed:
                raise missing_parameter(parameter.name)
        return checked


def received(raw: RawRequest, ident: Identified) -> Iterable[tuple[str, str, str]]:
    """(position, name, value) of every request parameter, common signature ones left out (legacy
    RPC's, which unsigned calls carry too: the SDKs send AssumeRoleWithOIDC as legacy RPC)."""
    common = RPC_COMMON_PARAMS if ident.scheme in ("rpc-v1", "anonymous") else frozenset()
    for key, value in raw.query:
        if key not in common:
            yield "query", key, value
    for key, value in raw.form:
        if key not in common:
            yield "body", key, value
    for key, item in raw.json_body().items():
        text = item if isinstance(item, str) else json.dumps(item)
        yield "body", key, text


def _position(parameter: Parameter, position: str) -> None:
    if position != parameter.position:
        where = "the query string" if parameter.position == "query" else "the request body"
        raise invalid_parameter(
            parameter.name, f"the action reads this parameter from {where} only"
        )


def _scalar_or_json(name: str, value: str, parameter: Parameter) -> Any:
    kind = parameter.schema.get("type")
    if parameter.style == "json" or kind in ("array", "object"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            raise invalid_parameter(name, "the value is not valid JSON") from None
        _shape(name, parsed, parameter.schema)
        return parsed
    return _scalar(name, value, parameter.schema)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _shape(name: str, value: Any, schema: Schema) -> None:
    """A JSON value (style `json`) against its schema: types, required members, item counts."""
    kind = schema.get("type")
    expected = _JSON_TYPES.get(kind or "")
    wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
    if expected is not None and (not isinstance(value, expected) or wrong_bool):
        raise invalid_parameter(name, f"the value must be a JSON {kind}")
    if isinstance(value, dict):
        for member, member_schema in schema.get("properties", {}).items():
            if member in value:
                _shape(f"{name}.{member}", value[member], member_schema)
            elif member_schema.get("required"):
                raise invalid_parameter(name, f"the JSON object lacks {member}")
    elif isinstance(value, list):
        _items(name, value, schema)
        for index, item in enumerate(value, start=1):
            _shape(f"{name}.{index}", item, schema.get("items", {}))
    elif kind is not None:
        _limits(name, value, str(value), schema)


def _scalar(name: str, value: str, schema: Schema) -> Any:
    """One wire value as its schema's type, within its enum, range, length and pattern."""
    kind = schema.get("type", "string")
    typed: Any
    if kind == "integer":
        if not _INTEGER.fullmatch(value):
            raise invalid_parameter(name, f"{value!r} is not an integer")
        typed = int(value)
        low, high = _INT_BOUNDS.get(schema.get("format", "int64"), _INT_BOUNDS["int64"])
        if not low <= typed <= high:
            raise invalid_parameter(name, f"{value} is out of the {schema.get('format')} range")
    elif kind == "number":
        if not _NUMBER.fullmatch(value):
            raise invalid_parameter(name, f"{value!r} is not a number")
        typed = float(value)
    elif kind == "boolean":
        if value.lower() not in _BOOLEANS:
            raise invalid_parameter(name, f"{value!r} is not a boolean")
        typed = _BOOLEANS[value.lower()]
    else:
        typed = value
    _limits(name, typed, value, schema)
    return typed


def _limits(name: str, typed: Any, text: str, schema: Schema) -> None:
    enum = schema.get("enum")
    if enum and text not in [str(e) for e in enum] and typed not in enum:
        raise invalid_parameter(name, f"{text!r} is not one of {', '.join(map(str, enum))}")
    if isinstance(typed, int | float) and not isinstance(typed, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and typed < float(low):
            raise invalid_parameter(name, f"{text} is less than the minimum {low}")
        if high is not None and typed > float(high):
            raise invalid_parameter(name, f"{text} is more than the maximum {high}")
    if isinstance(typed, str):
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if shortest is not None and len(typed) < int(shortest):
            raise invalid_parameter(name, f"the value is shorter than {shortest} characters")
        if longest is not None and len(typed) > int(longest):
            raise invalid_parameter(name, f"the value is longer than {longest} characters")
        pattern = schema.get("pattern")
        if pattern and re.search(pattern, typed) is None:
            raise invalid_parameter(name, f"the value does not match {pattern}")


def _items(name: str, items: list[Any], schema: Schema) -> None:
    most, least = schema.get("maxItems"), schema.get("minItems")
    if most is not None and len(items) > int(most):
        raise invalid_parameter(name, f"at most {most} items")
    if least is not None and len(items) < int(least):
        raise invalid_parameter(name, f"at least {least} items")


def _resolve(schema: Schema, schemas: Schema) -> Schema:
    """`schema` with `$ref`s replaced by the component schemas they name."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = schemas.get(ref.rsplit("/", 1)[1], {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    resolved = dict(schema)
    if isinstance(schema.get("items"), dict):
        resolved["items"] = _resolve(schema["items"], schemas)
    if isinstance(schema.get("properties"), dict):
        resolved["properties"] = {k: _resolve(v, schemas) for k, v in schema["properties"].items()}
    return resolved


class Contract:
    """The actions of the products the sandbox emulates, from the shipped metadata."""

    def __init__(self, products: Iterable[tuple[str, str]]) -> None:
        self._actions: dict[tuple[str, str], Action] = {}
        for code, version in products:
            meta = api_meta.load(code, version)
            schemas = meta.get("components", {}).get("schemas", {})
            for name, api in meta["apis"].items():
                self._actions[(version, name)] = Action(code, name, api, schemas)

    def action(self, version: str, name: str) -> Action:
        found = self._actions.get((version, name))
        if found is None:
            raise ApiError(*_NO_CONTRACT, f"No contract for {name} ({version}).")
        return found

    def counts(self) -> tuple[int, int]:
        """How many actions and parameters are checked."""
        actions = self._actions.values()
        return len(actions), sum(len(a.parameters) for a in actions)


_NO_CONTRACT = (500, "InternalError")
