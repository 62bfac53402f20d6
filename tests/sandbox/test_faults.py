"""Fault injection through `POST /_sandbox/faults`, seen by the official SDKs, and the request log.

Every rule kind is shown to take effect on exactly the calls it matches, as the workflow's retry
and idempotency code will meet them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import UIDS, SdkFactory
from tests.support.ram_setup import create_role, list_roles

LOG_FIELDS = ("account", "product", "action", "write", "status", "code")


def whoami(sdk: SdkFactory, account: str = "app") -> str:
    return str(sdk.sts(account).get_caller_identity().body.account_id)


@pytest.fixture
def admin_http(sandbox_process: SandboxProcess) -> Iterator[httpx.Client]:
    """Raw access to the admin routes, for what `SandboxAdmin` deliberately does not wrap."""
    with httpx.Client(base_url=sandbox_process.url, timeout=30, trust_env=False) as client:
        yield client


def test_error_with_times_fails_that_many_calls(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """A counted 503 fails the next two matching calls as a ServerException, then is spent."""
    described = admin.set_faults(
        {"action": "GetCallerIdentity", "error": "ServiceUnavailable", "status": 503, "times": 2}
    )
    assert described["rules"][0]["remaining"] == 2
    for _ in range(2):
        with pytest.raises(ServerException) as failed:
            whoami(sdk)
        assert (failed.value.code, failed.value.status_code) == ("ServiceUnavailable", 503)
    assert whoami(sdk) == UIDS["app"]
    assert whoami(sdk) == UIDS["app"]


def test_injected_client_error_carries_its_code_and_message(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """A 4xx rule reaches the SDK as a ClientException with the rule's code and message."""
    admin.set_faults({"error": "Throttling.Api", "status": 429, "message": "slow down", "times": 1})
    with pytest.raises(ClientException) as failed:
        whoami(sdk)
    assert (failed.value.code, failed.value.status_code) == ("Throttling.Api", 429)
    assert "slow down" in failed.value.message


@pytest.mark.parametrize(("probability", "failures"), [(1.0, 5), (0.0, 0)])
def test_error_probability_bounds(
    sdk: SdkFactory, admin: SandboxAdmin, probability: float, failures: int
) -> None:
    """Probability 1 always fails and never runs out; probability 0 never fails."""
    admin.set_faults({"error": "InternalError", "status": 500, "probability": probability})
    failed = 0
    for _ in range(5):
        try:
            whoami(sdk)
        except ServerException as exc:
            assert exc.code == "InternalError"
            failed += 1
    assert failed == failures


FILTERS = [
    ("product", {"product": "ram"}, ("registry", "ram"), ("registry", "sts")),
    ("action", {"action": "ListRoles"}, ("registry", "ram"), ("app", "ram-get-policy")),
    ("account", {"account": "registry"}, ("registry", "sts"), ("app", "sts")),
    (
        "all-three",
        {"product": "sts", "action": "GetCallerIdentity", "account": "app"},
        ("app", "sts"),
        ("registry", "sts"),
    ),
]


def _probe(sdk: SdkFactory, account: str, what: str) -> None:
    if what == "sts":
        whoami(sdk, account)
    elif what == "ram":
        list_roles(sdk, account)
    else:
        sdk.ram(account).get_policy(
            ram_models.GetPolicyRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System")
        )


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [(match, hit, miss) for _, match, hit, miss in FILTERS],
    ids=[name for name, *_ in FILTERS],
)
def test_rules_match_by_product_action_and_account(
    sdk: SdkFactory,
    admin: SandboxAdmin,
    match: dict[str, str],
    hit: tuple[str, str],
    miss: tuple[str, str],
) -> None:
    """A rule fails the calls it names and leaves every other call alone."""
    admin.set_faults({**match, "error": "InternalError", "status": 500})
    _probe(sdk, *miss)
    with pytest.raises(ServerException) as failed:
        _probe(sdk, *hit)
    assert failed.value.code == "InternalError"
    _probe(sdk, *miss)


def test_latency_delays_matching_calls(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """A latency rule holds the reply back at least that long, and the call still succeeds."""
    admin.set_faults({"action": "GetCallerIdentity", "latency_ms": 200})
    started = time.monotonic()
    assert whoami(sdk) == UIDS["app"]
    assert time.monotonic() - started >= 0.2


def test_throttle_counts_per_account(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """N calls a minute pass; the next is Throttling.User; another account has its own budget."""
    admin.set_faults({"product": "sts", "throttle_per_minute": 3})
    for _ in range(3):
        whoami(sdk, "app")
    with pytest.raises(ClientException) as throttled:
        whoami(sdk, "app")
    assert (throttled.value.code, throttled.value.status_code) == ("Throttling.User", 400)
    for _ in range(3):
        assert whoami(sdk, "registry") == UIDS["registry"]
    with pytest.raises(ClientException):
        whoami(sdk, "registry")
    assert list_roles(sdk, "app") == []


def test_lost_response_commits_the_write(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """The client sees a 503 although the role was created, so a blind retry meets a conflict."""
    admin.set_faults({"action": "CreateRole", "lose_response": True, "times": 1})
    with pytest.raises(ServerException) as lost:
        create_role(sdk, "ghost")
    assert (lost.value.code, lost.value.status_code) == ("ServiceUnavailable", 503)
    role = sdk.ram("registry").get_role(ram_models.GetRoleRequest(role_name="ghost")).body.role
    assert role.role_name == "ghost"
    with pytest.raises(ClientException) as retried:
        create_role(sdk, "ghost")
    assert (retried.value.code, retried.value.status_code) == ("EntityAlreadyExists.Role", 409)
    writes = [(r["action"], r["status"]) for r in admin.writes()]
    assert writes == [("CreateRole", 503), ("CreateRole", 409)]


def test_clock_jump_ages_the_world_as_the_matching_call_arrives(
    sdk: SdkFactory, admin: SandboxAdmin, admin_http: httpx.Client
) -> None:
    """The clock moves once, at the matching call (after its caller is authenticated, so that
    call still succeeds); the spent rule moves it no further."""
    admin.set_faults({"action": "GetCallerIdentity", "advance_clock_seconds": 1000, "times": 1})
    assert admin_http.get("/_sandbox/clock").json()["offset_seconds"] == 0
    assert whoami(sdk) == UIDS["app"]
    assert admin_http.get("/_sandbox/clock").json()["offset_seconds"] == 1000
    assert whoami(sdk) == UIDS["app"]
    assert admin_http.get("/_sandbox/clock").json()["offset_seconds"] == 1000
    assert admin.faults()[0]["remaining"] == 0


def test_delete_clears_every_rule(
    sdk: SdkFactory, admin: SandboxAdmin, admin_http: httpx.Client
) -> None:
    """Rules stack until DELETE; afterwards nothing is injected."""
    admin.set_faults({"product": "sts", "error": "InternalError", "status": 500})
    admin.set_faults({"product": "ram", "latency_ms": 1})
    assert len(admin_http.get("/_sandbox/faults").json()["rules"]) == 2
    with pytest.raises(ServerException):
        whoami(sdk)
    admin.clear_faults()
    assert admin_http.get("/_sandbox/faults").json() == {"rules": []}
    assert whoami(sdk) == UIDS["app"]


BAD_RULES: list[tuple[str, dict[str, Any]]] = [
    ("no-effect", {"product": "sts"}),
    ("two-effects", {"error": "X", "latency_ms": 10}),
    ("unknown-field", {"error": "X", "colour": "red"}),
    ("probability-above-1", {"error": "X", "probability": 1.5}),
    ("status-not-an-error", {"error": "X", "status": 200}),
    ("zero-times", {"error": "X", "times": 0}),
    ("zero-throttle", {"throttle_per_minute": 0}),
    ("negative-latency", {"latency_ms": -5}),
    ("clock-going-back", {"advance_clock_seconds": -60}),
]


@pytest.mark.parametrize("rule", [r for _, r in BAD_RULES], ids=[n for n, _ in BAD_RULES])
def test_invalid_rule_rejects_the_whole_set(
    sdk: SdkFactory, admin_http: httpx.Client, rule: dict[str, Any]
) -> None:
    """One bad rule is a 400 naming the problem, and its valid neighbour is not installed."""
    good = {"error": "InternalError", "status": 500}
    reply = admin_http.post("/_sandbox/faults", json={"rules": [good, rule]})
    assert reply.status_code == 400
    assert reply.json()["error"]
    assert admin_http.get("/_sandbox/faults").json() == {"rules": []}
    assert whoami(sdk) == UIDS["app"]


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"rules": {}}', b"{}"], ids=["text", "list", "dict", "empty"]
)
def test_malformed_fault_body_is_a_400(
    admin: SandboxAdmin, admin_http: httpx.Client, body: bytes
) -> None:
    """The admin route answers bad JSON with a 400, not a crash."""
    reply = admin_http.post(
        "/_sandbox/faults", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]


def test_request_log_records_every_call_in_order(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """Successes, refusals before and after authentication, and injected faults, in order."""
    whoami(sdk, "app")
    create_role(sdk, "logged")
    with pytest.raises(ClientException):
        sdk.ram("app").get_role(ram_models.GetRoleRequest(role_name="logged"))
    with pytest.raises(ClientException):
        sdk.sts(key=("LTAIunknown000000", "x")).get_caller_identity()
    admin.set_faults({"action": "ListRoles", "error": "ServiceUnavailable", "times": 1})
    with pytest.raises(ServerException):
        list_roles(sdk, "registry")
    list_roles(sdk, "registry")

    log = admin.requests()
    assert [tuple(entry[k] for k in LOG_FIELDS) for entry in log] == [
        ("app", "sts", "GetCallerIdentity", False, 200, None),
        ("registry", "ram", "CreateRole", True, 200, None),
        ("app", "ram", "GetRole", False, 404, "EntityNotExist.Role"),
        (None, "sts", "GetCallerIdentity", False, 404, "InvalidAccessKeyId.NotFound"),
        ("registry", "ram", "ListRoles", False, 503, "ServiceUnavailable"),
        ("registry", "ram", "ListRoles", False, 200, None),
    ]
    assert [entry["seq"] for entry in log] == list(range(1, len(log) + 1))
    assert admin.writes() == [log[1]]
