"""What a service handler receives: the caller, typed parameters, the transaction and the world."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.auth import Caller
from sandbox.errors import ApiError, invalid_parameter, missing_parameter
from sandbox.store import Scope, Tx
from sandbox.world import World

if TYPE_CHECKING:
    from sandbox.routes import Route

MAX_PARAM_CHARS = 65536

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class Params:
    """Request parameters by wire name, with typed getters.

    `typed` holds what `sandbox.contract` validated against the metadata (ints, bools, parsed
    JSON, lists), so the getters return those as they are; a value the metadata types as a
    string but a handler reads as a number is still parsed here, a malformed one a 400.
    """

    def __init__(
        self,
        values: dict[str, str],
        typed: dict[str, Any] | None = None,
        missing: Callable[[str], ApiError] = missing_parameter,
    ) -> None:
        self._values = values
        self._typed = typed or {}
        self._missing = missing

    def value(self, name: str) -> Any:
        """The validated, typed value (None when not given)."""
        return self._typed.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def text(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise self._missing(name)
            return default
        if len(value) > MAX_PARAM_CHARS:
            raise invalid_parameter(name, "the value is too long")
        return value

    def optional(self, name: str) -> str | None:
        value = self.text(name)
        return value if value else None

    def integer(
        self,
        name: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int:
        typed = self._typed.get(name)
        if isinstance(typed, int) and not isinstance(typed, bool):
            return self._bounded(name, typed, minimum, maximum)
        text = self.text(name, required=required)
        if not text:
            if default is None:
                raise self._missing(name)
            return default
        if not re.fullmatch(r"-?\d{1,18}", text):
            raise invalid_parameter(name, f"{text!r} is not an integer")
        return self._bounded(name, int(text), minimum, maximum)

    @staticmethod
    def _bounded(name: str, value: int, minimum: int | None, maximum: int | None) -> int:
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise invalid_parameter(name, f"{value} is out of range [{minimum}, {maximum}]")
        return value

    def flag(self, name: str, *, default: bool = False, required: bool = False) -> bool:
        typed = self._typed.get(name)
        if isinstance(typed, bool):
            return typed
        text = self.text(name, required=required).lower()
        if not text:
            return default
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise invalid_parameter(name, f"{text!r} is not a boolean")

    def json_value(self, name: str, *, required: bool = False) -> Any:
        typed = self._typed.get(name)
        if isinstance(typed, list | dict):
            return typed
        text = self.text(name, required=required)
        if not text:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise invalid_parameter(name, "the value is not valid JSON") from None

    def choice(
        self, name: str, options: tuple[str, ...], *, default: str = "", required: bool = False
    ) -> str:
        value = self.text(name, required=required, default=default)
        if value and value not in options:
            raise invalid_parameter(name, f"{value!r} is not one of {', '.join(options)}")
        return value


@dataclass
class Call:
    """One authenticated API call, executing inside one store transaction."""

    route: Route
    params: Params
    caller: Caller
    tx: Tx
    world: World
    request_id: str
    addressed_region: str | None = None
    """The region the request addressed (sandbox/regions.py); None for global products."""
    now: float = field(default_factory=time.time)

    def scope(self, region: str = "") -> Scope:
        """The caller's own resources in a region (or the global scope)."""
        return Scope(self.caller.account, region)

    def region(self) -> str:
        """The region a regional call acts in: the one its endpoint serves, nothing else."""
        region = self.addressed_region or ""
        if not region:
            raise missing_parameter("RegionId")
        if region not in self.world.regions:
            raise ApiError(
                404,
                "InvalidRegionId.NotFound",
                "The specified RegionId does not exist in our records.",
            )
        return region


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def iso_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
