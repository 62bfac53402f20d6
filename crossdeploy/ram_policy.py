"""RAM policy documents as data: parse, compare, who a trust policy lets in, merge, and evaluate.

Shared by the account-B steps (the pull role's trust, the pull policy) and the failure diagnosis.
Documents are compared parsed, never as text: RAM keeps a document as written, so key order,
spacing and `"x"` versus `["x"]` vary between equal documents.

A trust policy's principals are `(kind, value)` pairs such as `("Service",
"1111@sae.aliyuncs.com")` or `("RAM", "acs:ram::1111:root")`. Conditions are never evaluated here
(the request context is unknown): a conditional Allow does not count as a grant, a conditional Deny
counts as a denial. That errs towards reporting a problem, never towards hiding one.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any, Literal

Document = dict[str, Any]
Statement = dict[str, Any]
Principal = tuple[str, str]
Decision = Literal["allow", "deny", "implicit-deny"]
TrustVerdict = Literal["allowed", "denied", "missing"]

SAE_SERVICE = "sae.aliyuncs.com"
MANAGED_BY = "managed by sae-crossdeploy"

LOGIN_ACTION = "cr:GetAuthorizationToken"
PULL_ACTIONS = (
    LOGIN_ACTION,
    "cr:ListInstanceEndpoint",
    "cr:PullRepository",
    "cr:GetRepository",
    "cr:ListRepositoryTag",
)
"""What SAE needs to pull across accounts (reference section 7), and nothing more."""


class PolicyDocumentError(ValueError):
    """The text is not a policy document (not JSON, or no statements)."""


# -- parsing and comparing ----------------------------------------------------------------------


def parse(text: str) -> Document:
    """The document as JSON data, kept as written (a single statement object stays one)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyDocumentError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not statements(data):
        raise PolicyDocumentError("not a policy document: no Statement")
    return data


def to_text(document: Document) -> str:
    """Compact JSON, the form written to RAM."""
    return json.dumps(document, separators=(",", ":"))


def statements(document: Document) -> list[Statement]:
    """The statements, whether `Statement` is a list or a single object."""
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    return [s for s in items if isinstance(s, dict)]


def strings(value: Any) -> tuple[str, ...]:
    """A policy element that may be one string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _canonical_statement(statement: Statement) -> str:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            out[key] = sorted(set(strings(value)))
        elif key == "Principal" and isinstance(value, dict):
            out[key] = {kind: sorted(set(strings(v))) for kind, v in value.items()}
        elif key == "Condition" and isinstance(value, dict):
            out[key] = {
                op: {k: sorted(set(strings(v))) for k, v in clauses.items()}
                if isinstance(clauses, dict)
                else clauses
                for op, clauses in value.items()
            }
        else:
            out[key] = value
    return json.dumps(out, sort_keys=True)


def canonical(document: Document) -> str:
    """A text equal for documents that mean the same (order and one-vs-list do not matter)."""
    return json.dumps(
        {
            "Version": document.get("Version"),
            "Statement": sorted(_canonical_statement(s) for s in statements(document)),
        },
        sort_keys=True,
    )


def same_document(a: Document, b: Document) -> bool:
    return canonical(a) == canonical(b)


def same_statement(a: Statement, b: Statement) -> bool:
    return _canonical_statement(a) == _canonical_statement(b)


# -- trust policies -----------------------------------------------------------------------------


def sae_principal(app_uid: str) -> str:
    """The service principal SAE of account `app_uid` assumes roles as (reference section 7)."""
    return f"{app_uid}@{SAE_SERVICE}"


def sae_trust_statement(app_uid: str) -> Statement:
    return {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Service": [sae_principal(app_uid)]},
    }


def sae_trust_policy(app_uid: str) -> Document:
    """A trust policy that lets exactly account `app_uid`'s SAE assume the role."""
    return {"Version": "1", "Statement": [sae_trust_statement(app_uid)]}


def _glob(pattern: str, value: str, *, ignore_case: bool = True) -> bool:
    """RAM wildcards: `*` any run, `?` one character. Actions compare without case, resources
    with it."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _assumes(statement: Statement) -> bool:
    return any(_glob(a, "sts:AssumeRole") for a in strings(statement.get("Action")))


def _principals(statement: Statement) -> set[Principal]:
    raw = statement.get("Principal")
    if not isinstance(raw, dict):
        return set()
    return {(kind, value) for kind, v in raw.items() for value in strings(v)}


def _names(statement: Statement, principal: Principal) -> bool:
    kind, value = principal
    return any(
        k == kind and (v.lower() == value.lower() or (kind == "RAM" and v == "*"))
        for k, v in _principals(statement)
    )


def allowed_principals(document: Document) -> frozenset[Principal]:
    """Every principal an Allow statement names for sts:AssumeRole (conditional ones too)."""
    return frozenset(
        p
        for s in statements(document)
        if s.get("Effect") == "Allow" and _assumes(s)
        for p in _principals(s)
    )


def trust_verdict(document: Document, principal: Principal) -> TrustVerdict:
    """`denied` when a Deny names the principal, `allowed` when an unconditional Allow names it."""
    assuming = [s for s in statements(document) if _assumes(s) and _names(s, principal)]
    if any(s.get("Effect") == "Deny" for s in assuming):
        return "denied"
    if any(s.get("Effect") == "Allow" and not s.get("Condition") for s in assuming):
        return "allowed"
    return "missing"


def sae_trust_verdict(document: Document, app_uid: str) -> TrustVerdict:
    return trust_verdict(document, ("Service", sae_principal(app_uid)))


def merge_sae_trust(document: Document, app_uid: str) -> Document:
    """The document plus one statement trusting `app_uid`'s SAE; every other part untouched."""
    merged = copy.deepcopy(document)
    merged["Statement"] = [*statements(merged), sae_trust_statement(app_uid)]
    return merged


def without_statement(document: Document, statement: Statement) -> Document | None:
    """The document minus the last statement equal to `statement`; None when there is none."""
    current = statements(document)
    for index in range(len(current) - 1, -1, -1):
        if same_statement(current[index], statement):
            trimmed = copy.deepcopy(document)
            trimmed["Statement"] = current[:index] + current[index + 1 :]
            return trimmed
    return None


# -- permission policies ------------------------------------------------------------------------


LOGIN_RESOURCE = "*"
"""The only resource ACR authenticates `cr:GetAuthorizationToken` on. ACR's "RAM authentication
rules" table (Container Registry: RAM authorization information,
https://www.alibabacloud.com/help/en/acr/user-guide/ram-authorization-information) gives `*` for
GetAuthorizationToken, and the API's own page (GetAuthorizationToken, "Authorization
information": All Resources, https://help.aliyun.com/document_detail/451390.htm) agrees. A
statement scoped to an instance never matches it. The token gives nothing beyond the role's own
permissions (the same GetAuthorizationToken page), so `*` widens nothing."""


def pull_resources(
    registry_uid: str, *, instance_id: str | None, namespace: str, repo: str
) -> dict[str, str]:
    """Each pull action and the one resource ACR authenticates it on.

    `cr:GetAuthorizationToken` on `*` (`LOGIN_RESOURCE`). The others per each API's
    "Authorization information" in ACR's API reference, in the ARN formats of the "RAM
    authentication rules" page: `cr:ListInstanceEndpoint` on `instance/$instanceid`
    (https://help.aliyun.com/document_detail/451317.htm); `cr:GetRepository` and
    `cr:ListRepositoryTag` (API ListRepoTag) on
    `repository/$instanceid/$namespacename/$repositoryname`
    (https://help.aliyun.com/zh/acr/developer-reference/api-cr-2018-12-01-getrepository,
    .../api-cr-2018-12-01-listrepotag), as is `cr:PullRepository` (the registry's pull, which
    has no API page). `$regionid` may be `*` (the ARN table). Personal Edition has no instance
    id: its repositories are `repository/$namespacename/$repositoryname` (ACR "Repository access
    control", https://www.alibabacloud.com/help/doc-detail/67992.htm), and
    `cr:ListInstanceEndpoint` stays on the registry account's `instance/*`.
    """
    base = f"acs:cr:*:{registry_uid}"
    instance = f"{base}:instance/{instance_id or '*'}"
    path = f"{instance_id}/{namespace}/{repo}" if instance_id else f"{namespace}/{repo}"
    repository = f"{base}:repository/{path}"
    return {
        LOGIN_ACTION: LOGIN_RESOURCE,
        "cr:ListInstanceEndpoint": instance,
        "cr:PullRepository": repository,
        "cr:GetRepository": repository,
        "cr:ListRepositoryTag": repository,
    }


def pull_policy(
    registry_uid: str, *, instance_id: str | None, namespace: str, repo: str
) -> Document:
    """Exactly the five pull actions, each on the resource ACR authenticates it on: one statement
    per resource, so the token has its own statement with `"Resource": "*"`."""
    by_resource: dict[str, list[str]] = {}
    for action, resource in pull_resources(
        registry_uid, instance_id=instance_id, namespace=namespace, repo=repo
    ).items():
        by_resource.setdefault(resource, []).append(action)
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": resource}
            for resource, actions in by_resource.items()
        ],
    }


def grants_login(document: Document) -> bool:
    """Does the policy let its holder get a registry token, where ACR checks it (`*`)?"""
    return permission_decision([document], LOGIN_ACTION, LOGIN_RESOURCE) == "allow"


def permission_decision(documents: Iterable[Document], action: str, resource: str) -> Decision:
    """May the holder of these permission policies do `action` on `resource`? A Deny wins."""
    decision: Decision = "implicit-deny"
    for document in documents:
        for s in statements(document):
            hits = any(_glob(a, action) for a in strings(s.get("Action"))) and any(
                _glob(r, resource, ignore_case=False) for r in strings(s.get("Resource"))
            )
            if not hits:
                continue
            if s.get("Effect") == "Deny":
                return "deny"
            if s.get("Effect") == "Allow" and not s.get("Condition"):
                decision = "allow"
    return decision


def managed_description(app_name: str, app_uid: str) -> str:
    """The Description of what this tool creates: what it is for, for whom, and who owns it."""
    return f"SAE image pull for {app_name} (account {app_uid}); {MANAGED_BY}"
