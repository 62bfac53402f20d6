"""Every CreateApplication / DeployApplication parameter, learned from the official SDK's models.

The names, and whether each is text, a number, a flag, a map or a list of nested models, are read
from the SDK request models when this module is imported (their `from_map` keys and constructor
annotations), so a parameter the SDK accepts is reachable from the spec without a list kept here
by hand. `to_wire` turns a spec value into what the SDK model takes, and fails with the field
path of the first problem; `canonical` makes a sent value and the one DescribeApplicationConfig
returns comparable.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from crossdeploy.sae_facts import NOT_IN_API_CONTRACT

CREATE = sae_models.CreateApplicationRequest
DEPLOY = sae_models.DeployApplicationRequest
CONFIG = sae_models.DescribeApplicationConfigResponseBodyData


class _KeyRecorder(dict[str, Any]):
    """A mapping that answers None to every `get` and remembers what was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def __bool__(self) -> bool:  # `m = m or dict()` in the SDK must keep this object
        return True

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.append(key)
        return None


def wire_names(model: type) -> tuple[str, ...]:
    """The API names a SDK model reads, in its own order."""
    recorder = _KeyRecorder()
    model().from_map(recorder)
    return tuple(dict.fromkeys(recorder.asked))


@dataclass(frozen=True)
class Param:
    """One parameter of a SDK model: its API name and its SDK type."""

    name: str
    kind: str
    """str, int, bool, map, list (of `nested`), model (one `nested`)."""
    nested: type | None = None


def _nested_class(annotation: str) -> type | None:
    found = re.search(r"main_models\.(\w+)", annotation)
    return getattr(sae_models, found.group(1)) if found else None


def _attribute_of(model: type, name: str) -> str:
    """The model attribute `from_map` fills from API name `name`."""
    blank = vars(model().from_map({}))
    probe = model().from_map({})
    with contextlib.suppress(AttributeError, TypeError):
        probe.from_map({name: "probe"})
    changed = [str(k) for k, v in vars(probe).items() if blank.get(k) != v]
    if changed:
        return changed[0]
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return snake


def describe_model(model: type) -> dict[str, Param]:
    """API name -> Param for every parameter of a SDK model."""
    annotations = {
        name: str(p.annotation)
        for name, p in inspect.signature(model).parameters.items()
        if name != "self"
    }
    params: dict[str, Param] = {}
    for name in wire_names(model):
        annotation = annotations.get(_attribute_of(model, name), "str")
        if annotation.startswith("List["):
            params[name] = Param(name, "list", _nested_class(annotation))
        elif annotation.startswith("Dict["):
            params[name] = Param(name, "map")
        elif "main_models." in annotation:
            params[name] = Param(name, "model", _nested_class(annotation))
        elif annotation in ("int", "bool"):
            params[name] = Param(name, annotation)
        else:
            params[name] = Param(name, "str")
    return params


def request(model: type, wire: Mapping[str, Any]) -> Any:
    """A SDK request model holding exactly the parameters in `wire` (by API name).

    The SDK's `from_map` fills the list parameters it is not given with `[]` (Init- and
    SidecarContainersConfig), and its client sends a list that is not None as JSON: `[]`, which
    replaces the containers set in the console with none. Those defaults are unset again, so
    only what the caller gives is sent; a `[]` given on purpose is still sent.
    """
    made = model().from_map(dict(wire))
    for name, attribute in _defaulted(model).items():
        if name not in wire:
            setattr(made, attribute, None)
    return made


def _defaulted(model: type) -> dict[str, str]:
    """API name -> attribute of the parameters `from_map` sets although the map lacks them."""
    filled = {k for k, v in vars(model().from_map({})).items() if v is not None}
    return {
        name: attribute
        for name in wire_names(model)
        if (attribute := _attribute_of(model, name)) in filled
    }


def _in_contract(model: type) -> dict[str, Param]:
    """The SDK model's parameters, less those the API contract does not list (sae_facts)."""
    return {k: v for k, v in describe_model(model).items() if k not in NOT_IN_API_CONTRACT}


CREATE_PARAMS = _in_contract(CREATE)
DEPLOY_PARAMS = _in_contract(DEPLOY)
ALL_PARAMS = {**DEPLOY_PARAMS, **CREATE_PARAMS}
CREATE_ONLY = frozenset(CREATE_PARAMS) - frozenset(DEPLOY_PARAMS)
"""Taken by CreateApplication only: fixed once the app exists."""
DEPLOY_ONLY = frozenset(DEPLOY_PARAMS) - frozenset(CREATE_PARAMS)
"""Taken by DeployApplication only (how a release runs): sent from the first deploy on."""
RETURNED = frozenset(wire_names(CONFIG))
"""What DescribeApplicationConfig can report (the SDK's response model)."""

JSON_VALUED = frozenset(
    """ConfigMapMountDesc CustomHostAlias EmptyDirDesc GpuConfig HeadlessPvtzDiscoverySvc
    KafkaConfigs Liveness LokiConfigs MicroRegistrationConfig MicroserviceEngineConfig MountDesc
    NasConfigs OssMountDescs PostStart PreStop PvtzDiscoverySvc Readiness SecretMountDesc
    ServiceTags SlsConfigs StartupProbe SwimlanePvtzDiscoverySvc TomcatConfig
    UpdateStrategy""".split()
)
"""Text parameters whose documented value is JSON (an object or an array)."""

_SECRET = re.compile(r"(secret|password|passwd|token)$", re.IGNORECASE)
_SECRET_REFERENCES = frozenset({"SecretMountDesc", "ImagePullSecrets"})
MASK = "******"


def is_secret(name: str) -> bool:
    """Password-like parameters and keys (OssAkSecret, a nested `password`): never shown."""
    return bool(_SECRET.search(name)) and name not in _SECRET_REFERENCES


class ParamError(ValueError):
    """A value the SDK model cannot take; `path` is relative to the parameter (`[0].Name`)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


def _json_text(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamError(path, f"not valid JSON ({exc.msg} at character {exc.pos})") from None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def to_wire(param: Param, value: Any, path: str = "") -> Any:
    """The value as the SDK model takes it: text, int, bool, a map, or nested models as dicts."""
    if param.kind == "str":
        if isinstance(value, Mapping | list):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        text = _scalar_text(value)
        if text is None:
            raise ParamError(path, f"expected text, got {type(value).__name__}")
        if (
            param.name in JSON_VALUED
            and text.strip()
            and not isinstance(_json_text(path, text), dict | list)
        ):
            raise ParamError(path, "expected a JSON object or array")
        return text
    if param.kind == "int":
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(path, f"expected an integer, got {value!r}")
        return value
    if param.kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ParamError(path, f"expected true or false, got {value!r}")
        return value
    parsed = _json_text(path, value) if isinstance(value, str) else value
    if param.kind == "map":
        if not isinstance(parsed, Mapping):
            raise ParamError(path, "expected a mapping of names to values")
        out: dict[str, str] = {}
        for key, item in parsed.items():
            text = _scalar_text(item)
            if text is None:
                raise ParamError(f"{path}.{key}", "expected a text value")
            out[str(key)] = text
        return out
    if param.kind == "list":
        if not isinstance(parsed, list):
            raise ParamError(path, "expected a list")
        return [_nested(param, item, f"{path}[{i}]") for i, item in enumerate(parsed)]
    return _nested(param, parsed, path)


def _nested(param: Param, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ParamError(path, "expected a mapping")
    if param.nested is None:
        return dict(value)
    fields = describe_model(param.nested)
    out = {}
    for key, item in value.items():
        if key not in fields:
            known = ", ".join(fields)
            raise ParamError(f"{path}.{key}", f"not a field of {param.name} (known: {known})")
        out[key] = to_wire(fields[key], item, f"{path}.{key}")
    return out


def canonical(value: Any) -> Any:
    """A comparable form: JSON text parsed, scalars as text, maps sorted, empties as None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return canonical(json.loads(text))
            except ValueError:
                return text
        return text or None
    if isinstance(value, Mapping):
        items = {str(k): canonical(v) for k, v in value.items()}
        return {k: v for k, v in sorted(items.items()) if v is not None} or None
    if isinstance(value, list):
        return [canonical(v) for v in value] or None
    return _scalar_text(value)


def masked(name: str, value: Any) -> Any:
    """`value` with every password-like part replaced by MASK (the whole of a secret name)."""
    if is_secret(name):
        return MASK
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(masked("", parsed), separators=(",", ":"))
    if isinstance(value, Mapping):
        return {k: masked(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked("", v) for v in value]
    return value


def shown(name: str, value: Any, limit: int = 60) -> str:
    """A short, masked rendering of a parameter's value for the plan."""
    if value in (None, "", [], {}):
        return "(unset)"
    safe = masked(name, value)
    text = safe if isinstance(safe, str) else json.dumps(safe, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
