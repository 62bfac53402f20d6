"""RAM policy documents: the grammar RAM enforces, and a small evaluator.

Permission policies grant actions on resources; trust policies (a role's
AssumeRolePolicyDocument) name the principals that may assume the role. Both share one statement
grammar. An explicit Deny wins over any Allow; no matching Allow is an implicit deny.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

PolicyKind = Literal["permission", "trust"]

PERMISSION_MAX_CHARS = 6144
TRUST_MAX_CHARS = 4096
"""Undocumented for trust policies (reference section 3.1); 4096 is the sandbox's choice."""

_ACTION = re.compile(r"^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$")
_PRINCIPAL_KINDS = ("RAM", "Service", "Federated")
_CONDITION_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "Bool",
    "IpAddress",
    "NotIpAddress",
}


class PolicyError(ValueError):
    """The document breaks the grammar; the text is what RAM's MalformedPolicyDocument says."""


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    IMPLICIT_DENY = "implicit-deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Principal:
    """Who is asking: a RAM identity (root account, RAM user or an assumed role), a cloud
    service, or an identity provider's user (AssumeRoleWithOIDC)."""

    account: str
    kind: Literal["account", "user", "role", "service", "federated"]
    name: str = ""
    """User name for kind 'user', role name for kind 'role'; service domain (e.g.
    'sae.aliyuncs.com') for kind 'service'; the provider's ARN
    (`acs:ram::<uid>:oidc-provider/<name>`) for kind 'federated'."""


@dataclass(frozen=True)
class Statement:
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDocument:
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, text: str, kind: PolicyKind) -> PolicyDocument:
        limit = PERMISSION_MAX_CHARS if kind == "permission" else TRUST_MAX_CHARS
        if len(text) > limit:
            raise PolicyError(f"The policy document is longer than {limit} characters.")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise PolicyError(f"The policy document is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PolicyError("The policy document must be a JSON object.")
        unknown = set(data) - {"Version", "Statement"}
        if unknown:
            raise PolicyError(f"Unknown policy element: {sorted(unknown)[0]}.")
        if data.get("Version") != "1":
            raise PolicyError('The policy element "Version" must be "1".')
        raw = data.get("Statement")
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise PolicyError('The policy element "Statement" must be a non-empty list.')
        return cls(tuple(_parse_statement(s, kind) for s in raw))

    def decide(self, matches: Iterable[bool]) -> Decision:
        """Combine per-statement match results (same order as statements)."""
        decision = Decision.IMPLICIT_DENY
        for statement, matched in zip(self.statements, matches, strict=True):
            if not matched:
                continue
            if statement.effect == "Deny":
                return Decision.DENY
            decision = Decision.ALLOW
        return decision


def _strings(value: Any, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f'The policy element "{element}" must be a string or a list of strings.')
    return tuple(value)


def _parse_statement(raw: Any, kind: PolicyKind) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Each statement must be a JSON object.")
    allowed = {"Effect", "Action", "Resource", "Condition", "Principal"}
    unknown = set(raw) - allowed
    if unknown:
        raise PolicyError(f"Unknown statement element: {sorted(unknown)[0]}.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError('The statement element "Effect" must be "Allow" or "Deny".')
    actions = _strings(raw.get("Action"), "Action")
    for action in actions:
        if not _ACTION.match(action):
            raise PolicyError(f'The action "{action}" is not of the form <service>:<action>.')
    principals: dict[str, tuple[str, ...]] = {}
    resources: tuple[str, ...] = ()
    if kind == "trust":
        if "Resource" in raw:
            raise PolicyError('A trust policy statement cannot have "Resource".')
        principal = raw.get("Principal")
        if not isinstance(principal, dict) or not principal:
            raise PolicyError('A trust policy statement needs "Principal".')
        for key, value in principal.items():
            if key not in _PRINCIPAL_KINDS:
                raise PolicyError(f'Unknown principal type "{key}".')
            principals[key] = _strings(value, f"Principal.{key}")
        for action in actions:
            if action.lower() not in ("sts:assumerole", "sts:*", "*"):
                raise PolicyError('A trust policy statement can only allow "sts:AssumeRole".')
    else:
        if "Principal" in raw:
            raise PolicyError('A permission policy statement cannot have "Principal".')
        resources = _strings(raw.get("Resource"), "Resource")
    return Statement(
        effect=effect,
        actions=actions,
        resources=resources,
        principals=principals,
        conditions=_parse_conditions(raw.get("Condition")),
    )


def _parse_conditions(raw: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError('The statement element "Condition" must be an object.')
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for operator, clauses in raw.items():
        if operator not in _CONDITION_OPERATORS:
            raise PolicyError(f'Unsupported condition operator "{operator}".')
        if not isinstance(clauses, dict) or not clauses:
            raise PolicyError(f'The condition "{operator}" must map keys to values.')
        parsed: dict[str, tuple[str, ...]] = {}
        for key, value in clauses.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            parsed[key.lower()] = _strings(value, f"Condition.{operator}.{key}")
        out[operator] = parsed
    return out


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """RAM wildcards: `*` (any run) and `?` (one character); everything else is literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def _conditions_hold(
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]], context: Mapping[str, str]
) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    for operator, clauses in conditions.items():
        for key, values in clauses.items():
            actual = ctx.get(key)
            negated = operator.startswith(("StringNot", "NotIp"))
            if actual is None:
                if not negated:
                    return False
                continue
            if operator in ("StringEquals", "StringNotEquals", "Bool"):
                hit = actual in values
            elif operator in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
                hit = actual.lower() in {v.lower() for v in values}
            elif operator in ("StringLike", "StringNotLike"):
                hit = any(_glob(v, actual, case_sensitive=True) for v in values)
            else:
                hit = _ip_in(actual, values)
            if hit == negated:
                return False
    return True


def _ip_in(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)
    except ValueError:
        return False


def evaluate(
    documents: Iterable[PolicyDocument],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """May the holder of these permission policies perform `action` on `resource`?"""
    decision = Decision.IMPLICIT_DENY
    for doc in documents:
        matches = (
            any(_glob(a, action, case_sensitive=False) for a in s.actions)
            and any(_glob(r, resource, case_sensitive=True) for r in s.resources)
            and _conditions_hold(s.conditions, context or {})
            for s in doc.statements
        )
        result = doc.decide(matches)
        if result is Decision.DENY:
            return result
        if result is Decision.ALLOW:
            decision = result
    return decision


def _principal_matches(
    principals: Mapping[str, tuple[str, ...]], who: Principal, role_account: str
) -> bool:
    if who.kind == "federated":
        # Principal.Federated names the IdP by ARN (RAM, "Create a RAM role for a trusted IdP":
        # https://www.alibabacloud.com/help/en/ram/user-guide/create-a-ram-role-for-a-trusted-idp)
        return any(e.lower() == who.name.lower() for e in principals.get("Federated", ()))
    if who.kind == "service":
        return any(
            entry.lower() in (f"{who.account}@{who.name}".lower(), who.name.lower())
            and (entry.lower() != who.name.lower() or who.account == role_account)
            for entry in principals.get("Service", ())
        )
    for entry in principals.get("RAM", ()):
        if entry == "*" or entry in (who.account, f"acs:ram::{who.account}:root"):
            return True
        if (
            who.kind in ("role", "user")
            and entry.lower() == f"acs:ram::{who.account}:{who.kind}/{who.name}".lower()
        ):
            return True
    return False


def trust_allows(
    document: PolicyDocument,
    who: Principal,
    role_account: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """May `who` assume a role (owned by `role_account`) with this trust policy?"""
    return document.decide(
        any(_glob(a, "sts:AssumeRole", case_sensitive=False) for a in s.actions)
        and _principal_matches(s.principals, who, role_account)
        and _conditions_hold(s.conditions, context or {})
        for s in document.statements
    )
