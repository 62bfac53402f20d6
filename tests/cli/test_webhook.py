"""The ACR trigger bridge (contract: interfaces.md section 5).

The payload parser and the Starlette app are tested in-process with a recording deliverer (a
table of malformed payloads, hypothesis fuzzing: never a 500). The promises about the command —
its ready line, 202/401/400, exactly one `acr.image.pushed` event per push in the Prefect API,
nothing for rejected requests, nothing lost when the process dies right after a 202, the token
never printed — are tested on `crossdeploy webhook serve` run as a child process against the
session's Prefect test server, reading the events back through the Prefect API.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from cli import webhook
from cli.webhook import (
    EVENT_NAME,
    DeliveryError,
    PayloadError,
    PrefectApiDelivery,
    create_app,
    parse_push,
)
from tests.support.processes import crossdeploy
from tests.support.webhook_bridge import Bridge, encode

if TYPE_CHECKING:
    from prefect.events import Event

DIGEST = "sha256:457f4aa83fc9a6663ab9d1b0a6e2dce25a12a943ed5bf2c1747c58d48bbb4917"

# The example body of Alibaba Cloud's "Manage triggers" page, as ACR sends it.
DOCUMENTED: dict[str, Any] = {
    "push_data": {"digest": DIGEST, "pushed_at": "2016-11-29 12:25:46", "tag": "latest"},
    "repository": {
        "date_created": "2016-10-28 21:31:42",
        "name": "repoTest",
        "namespace": "namespace",
        "region": "cn-hangzhou",
        "repo_authentication_type": "NO_CERTIFIED",
        "repo_full_name": "namespace/repoTest",
        "repo_origin_type": "NO_CERTIFIED",
        "repo_type": "PUBLIC",
    },
}


def push_body(
    namespace: str = "shop",
    name: str = "web",
    tag: str = "1.2",
    region: str = "cn-hangzhou",
    digest: str = DIGEST,
) -> dict[str, Any]:
    body = copy.deepcopy(DOCUMENTED)
    body["push_data"].update(tag=tag, digest=digest)
    body["repository"].update(
        name=name, namespace=namespace, region=region, repo_full_name=f"{namespace}/{name}"
    )
    return body


# --- the parser -------------------------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    push = parse_push(encode(DOCUMENTED))
    assert push.resource_id == "acr.repo.cn-hangzhou.namespace/repoTest"
    assert push.payload() == {
        "tag": "latest",
        "digest": DIGEST,
        "pushed_at": "2016-11-29 12:25:46",
        "repo_full_name": "namespace/repoTest",
        "region": "cn-hangzhou",
        "namespace": "namespace",
        "name": "repoTest",
        "date_created": "2016-10-28 21:31:42",
        "repo_type": "PUBLIC",
        "repo_authentication_type": "NO_CERTIFIED",
        "repo_origin_type": "NO_CERTIFIED",
    }


def test_the_event_names_the_repository_and_carries_the_push() -> None:
    push = parse_push(encode(push_body(namespace="shop", name="web", tag="2.0")))
    event = push.to_event()
    assert event.event == EVENT_NAME
    assert dict(event.resource) == {
        "prefect.resource.id": "acr.repo.cn-hangzhou.shop/web",
        "prefect.resource.name": "shop/web",
        "acr.region": "cn-hangzhou",
        "acr.namespace": "shop",
        "acr.repository": "web",
    }
    for key in ("tag", "digest", "pushed_at", "repo_full_name", "region", "namespace", "name"):
        assert key in event.payload
    assert event.payload["tag"] == "2.0"


def test_the_event_id_is_the_push_so_a_repeated_notification_is_one_event() -> None:
    first = parse_push(encode(push_body(tag="2.0")))
    again = parse_push(encode(push_body(tag="2.0")))
    other = parse_push(encode(push_body(tag="2.1")))
    assert first.to_event().id == again.to_event().id == first.event_id
    assert other.event_id != first.event_id


@pytest.mark.parametrize(
    "extra",
    [
        {},  # only the required fields
        {"repo_type": None},  # null means absent
        {"something_new": {"nested": [1, 2]}},  # unknown keys are ignored
    ],
)
def test_optional_and_unknown_fields_are_tolerated(extra: dict[str, Any]) -> None:
    body = push_body()
    for key in ("date_created", "repo_type", "repo_authentication_type", "repo_origin_type"):
        del body["repository"][key]
    body["repository"].update(extra)
    assert parse_push(encode(body)).tag == "1.2"


@pytest.mark.parametrize(
    "value",
    ["2016-11-29T12:25:46Z", "2016-11-29T12:25:46.123+08:00", "2016-11-29 12:25:46+0800"],
)
def test_pushed_at_may_be_iso_8601(value: str) -> None:
    body = push_body()
    body["push_data"]["pushed_at"] = value
    assert parse_push(encode(body)).pushed_at == value


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    section, _, key = path.partition(".")

    def mutate(body: dict[str, Any]) -> None:
        if key:
            body[section][key] = value
        else:
            body[section] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    section, _, key = path.partition(".")

    def mutate(body: dict[str, Any]) -> None:
        if key:
            del body[section][key]
        else:
            del body[section]

    return mutate


MALFORMED_BODIES: list[tuple[bytes, str]] = [
    (b"", "body"),
    (b"not json", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[]", "body"),
    (b'"push"', "body"),
    (b"null", "body"),
    (b'{"push_data": NaN}', "body"),
    (b"[" * 50_000, "body"),  # nesting deep enough to exhaust the recursion limit
    (b'{"a": ' + b"9" * 5000 + b"}", "body"),  # an integer longer than Python parses
    (encode({**DOCUMENTED, "padding": "x" * (64 * 1024)}), "body"),  # over 64 KiB
]

MALFORMED_FIELDS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_drop("push_data"), "push_data"),
    (_set("push_data", None), "push_data"),
    (_set("push_data", ["latest"]), "push_data"),
    (_drop("repository"), "repository"),
    (_set("repository", "namespace/repoTest"), "repository"),
    (_drop("push_data.tag"), "push_data.tag"),
    (_set("push_data.tag", 7), "push_data.tag"),
    (_set("push_data.tag", ""), "push_data.tag"),
    (_set("push_data.tag", ".hidden"), "push_data.tag"),
    (_set("push_data.tag", "-rc"), "push_data.tag"),
    (_set("push_data.tag", "a" * 129), "push_data.tag"),
    (_set("push_data.tag", "v1 evil"), "push_data.tag"),
    (_set("push_data.tag", "v1/evil"), "push_data.tag"),
    (_set("push_data.tag", "v1\n"), "push_data.tag"),
    (_set("push_data.tag", "v\uff11"), "push_data.tag"),  # a full-width digit
    (_drop("push_data.digest"), "push_data.digest"),
    (_set("push_data.digest", "sha256:abc"), "push_data.digest"),
    (_set("push_data.digest", "sha256:" + "G" * 64), "push_data.digest"),
    (_set("push_data.digest", DIGEST.upper()), "push_data.digest"),
    (_set("push_data.digest", "457f4aa83fc9a6663ab9d1b0a6e2dce2"), "push_data.digest"),
    (_set("push_data.digest", ["sha256"]), "push_data.digest"),
    (_drop("push_data.pushed_at"), "push_data.pushed_at"),
    (_set("push_data.pushed_at", 1480422346), "push_data.pushed_at"),
    (_set("push_data.pushed_at", "yesterday"), "push_data.pushed_at"),
    (_set("push_data.pushed_at", "2016-13-29 12:25:46"), "push_data.pushed_at"),
    (_set("push_data.pushed_at", "2016-02-30 12:25:46"), "push_data.pushed_at"),
    (_drop("repository.region"), "repository.region"),
    (_set("repository.region", "CN-HANGZHOU"), "repository.region"),
    (_set("repository.region", "cn_hangzhou"), "repository.region"),
    (_set("repository.region", "hangzhou"), "repository.region"),
    (_set("repository.region", "cn-hangzhou.evil"), "repository.region"),
    (_set("repository.region", 42), "repository.region"),
    (_drop("repository.namespace"), "repository.namespace"),
    (_set("repository.namespace", ""), "repository.namespace"),
    (_set("repository.namespace", "ns/evil"), "repository.namespace"),
    (_set("repository.namespace", "-ns"), "repository.namespace"),
    (_set("repository.namespace", "ns."), "repository.namespace"),
    (_set("repository.namespace", "n s"), "repository.namespace"),
    (_set("repository.namespace", "a" * 129), "repository.namespace"),
    (_set("repository.namespace", True), "repository.namespace"),
    (_drop("repository.name"), "repository.name"),
    (_set("repository.name", ""), "repository.name"),
    (_set("repository.name", "../etc"), "repository.name"),
    (_set("repository.name", "a//b"), "repository.name"),
    (_set("repository.name", "web/"), "repository.name"),
    (_set("repository.name", {"web": 1}), "repository.name"),
    (_drop("repository.repo_full_name"), "repository.repo_full_name"),
    (_set("repository.repo_full_name", "other/repoTest"), "repository.repo_full_name"),
    (_set("repository.repo_full_name", 1), "repository.repo_full_name"),
    (_set("repository.repo_type", 5), "repository.repo_type"),
    (_set("repository.date_created", "\u2603"), "repository.date_created"),
]


@pytest.mark.parametrize(("body", "field"), MALFORMED_BODIES)
def test_malformed_bodies_are_refused(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_push(body)
    assert caught.value.field == field


@pytest.mark.parametrize(("mutate", "field"), MALFORMED_FIELDS)
def test_malformed_fields_are_named(mutate: Callable[[dict[str, Any]], None], field: str) -> None:
    body = copy.deepcopy(DOCUMENTED)
    mutate(body)
    with pytest.raises(PayloadError) as caught:
        parse_push(encode(body))
    assert caught.value.field == field


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FIELD_PATHS = [
    "push_data",
    "repository",
    *(f"push_data.{key}" for key in ("tag", "digest", "pushed_at")),
    *(
        f"repository.{key}"
        for key in ("region", "namespace", "name", "repo_full_name", "repo_type", "date_created")
    ),
]


@st.composite
def mutated_pushes(draw: st.DrawFn) -> bytes:
    """The documented body with some fields replaced by arbitrary JSON, or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=512))
    body = copy.deepcopy(DOCUMENTED)
    for path in draw(st.lists(st.sampled_from(FIELD_PATHS), max_size=3, unique=True)):
        value = draw(JSON_VALUES | st.text(max_size=140) | st.from_regex(r"[a-z0-9._/-]{0,40}"))
        section, _, key = path.partition(".")
        if key and isinstance(body.get(section), dict):
            body[section][key] = value
        elif not key:
            body[section] = value
    return encode(body)


@settings(max_examples=300, deadline=None)
@given(mutated_pushes())
def test_the_parser_accepts_or_names_a_field_never_crashes(body: bytes) -> None:
    try:
        push = parse_push(body)
    except PayloadError as exc:
        assert exc.field == "body" or exc.field in FIELD_PATHS
        return
    push.to_event().model_dump_json()  # a valid, serializable Prefect event


# --- the app, in process ----------------------------------------------------------------------

TOKEN = "s3cr3t-" + secrets.token_hex(8)


class Recorder:
    """A deliverer that keeps what it was handed (and serializes it, as the real one must)."""

    def __init__(self, fail: BaseException | None = None, delay: float = 0.0) -> None:
        self.events: list[Event] = []
        self.fail = fail
        self.delay = delay

    async def __call__(self, event: Event) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        event.model_dump_json()
        self.events.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class AppClient:
    """Requests to the app in process (httpx's ASGI transport; app exceptions propagate)."""

    def __init__(self, app: Starlette) -> None:
        self._app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as http:
                response = await http.request(method, url, **kwargs)
                await response.aread()
                return response

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)


@pytest.fixture
def client(recorder: Recorder) -> AppClient:
    return AppClient(create_app(TOKEN, deliver=recorder))


def test_a_good_push_is_accepted_with_the_event_id(client: AppClient, recorder: Recorder) -> None:
    response = client.post(f"/acr?token={TOKEN}", json=push_body(tag="3.0"))
    assert response.status_code == 202
    (event,) = recorder.events
    assert response.json() == {
        "event": EVENT_NAME,
        "event_id": str(event.id),
        "resource_id": "acr.repo.cn-hangzhou.shop/web",
        "tag": "3.0",
    }


@pytest.mark.parametrize(
    "query",
    ["", "?token=", "?token=wrong", f"?token={TOKEN}x", f"?token={TOKEN}&token={TOKEN}", "?t=1"],
    ids=["none", "empty", "wrong", "longer", "twice", "other-name"],
)
def test_a_missing_or_wrong_token_is_401_before_the_body_is_looked_at(
    client: AppClient, recorder: Recorder, query: str
) -> None:
    for body in (encode(push_body()), b"not json"):
        response = client.post(f"/acr{query}", content=body)
        assert response.status_code == 401
        assert TOKEN not in response.text
    assert recorder.events == []


@pytest.mark.parametrize(("mutate", "field"), MALFORMED_FIELDS[::4])
def test_a_malformed_push_is_400_naming_the_field(
    client: AppClient,
    recorder: Recorder,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    body = copy.deepcopy(DOCUMENTED)
    mutate(body)
    response = client.post(f"/acr?token={TOKEN}", content=encode(body))
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert recorder.events == []


def test_an_oversized_body_is_400_even_when_streamed_without_a_length(
    client: AppClient, recorder: Recorder
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"padding": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(f"/acr?token={TOKEN}", content=chunks())
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    response = client.post(f"/acr?token={TOKEN}", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 400
    assert recorder.events == []


def test_other_paths_and_methods(client: AppClient) -> None:
    assert client.get("/health").json() == {"ok": True}
    assert client.get(f"/acr?token={TOKEN}").status_code == 405
    assert client.put(f"/acr?token={TOKEN}", json=DOCUMENTED).status_code == 405
    assert client.post(f"/?token={TOKEN}", json=DOCUMENTED).status_code == 404
    assert client.post("/health").status_code == 405
    # No redirect from /acr/ to /acr: it would repeat the token in a Location header.
    response = client.post(f"/acr/?token={TOKEN}", json=DOCUMENTED, follow_redirects=False)
    assert response.status_code == 404
    assert TOKEN not in response.text
    assert TOKEN not in str(response.headers)


@pytest.mark.parametrize(
    "recorder",
    [Recorder(fail=DeliveryError("the Prefect API answered 500 to POST /events"))],
)
def test_an_undelivered_event_is_503_not_202(client: AppClient) -> None:
    response = client.post(f"/acr?token={TOKEN}", json=push_body())
    assert response.status_code == 503
    assert "500" in response.json()["message"]


def test_a_delivery_that_hangs_is_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhook, "DELIVERY_TIMEOUT_SECONDS", 0.2)
    hanging = AppClient(create_app(TOKEN, deliver=Recorder(delay=5)))
    response = hanging.post(f"/acr?token={TOKEN}", json=push_body())
    assert response.status_code == 503


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty token"):
        create_app("")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=mutated_pushes())
def test_the_app_answers_202_or_400_never_500(
    client: AppClient, recorder: Recorder, body: bytes
) -> None:
    before = len(recorder.events)
    response = client.post(f"/acr?token={TOKEN}", content=body)
    assert response.status_code in (202, 400), response.text
    assert len(recorder.events) == before + (response.status_code == 202)
    if response.status_code == 400:
        assert set(response.json()) == {"error", "field", "message"}


# --- the command, against a Prefect server ----------------------------------------------------


@pytest.fixture(scope="module")
def api_url(prefect_harness: None) -> str:
    import prefect.settings

    url = prefect.settings.PREFECT_API_URL.value()
    assert url
    return str(url)


@pytest.fixture(scope="module")
def bridge_token() -> str:
    return "tok-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def bridge(api_url: str, bridge_token: str) -> Iterator[Bridge]:
    running = Bridge(api_url, "--token", bridge_token)
    yield running
    assert running.stop() == 0  # SIGTERM: a graceful, successful exit
    assert running.stdout[1:] == []  # the ready line is all it prints on stdout
    assert bridge_token not in running.output()


def pushed_events(resource_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as prefect:
        page = prefect.read_events(
            EventFilter(
                event=EventNameFilter(name=[EVENT_NAME]),
                resource=EventResourceFilter(id=[resource_id]),
            ),
            limit=50,
        )
    return list(page.events)


def wait_for_events(resource_id: str, timeout: float = 60.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        events = pushed_events(resource_id)
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.25)


def settle(bridge: Bridge, token: str) -> None:
    """Push a fresh sentinel and wait until Prefect has it: earlier events are in by then."""
    sentinel = push_body(namespace=f"sentinel-{secrets.token_hex(4)}", name="probe")
    assert bridge.post(token, sentinel).status_code == 202
    assert wait_for_events(f"acr.repo.cn-hangzhou.{sentinel['repository']['namespace']}/probe")


def unique_namespace() -> str:
    return f"ns-{secrets.token_hex(4)}"


def test_a_push_becomes_exactly_one_event(bridge: Bridge, bridge_token: str) -> None:
    namespace = unique_namespace()
    body = push_body(namespace=namespace, name="web", tag="2024.06.1", region="cn-shanghai")
    resource_id = f"acr.repo.cn-shanghai.{namespace}/web"

    response = bridge.post(bridge_token, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["resource_id"] == resource_id
    # ACR re-sending the same notification is the same event.
    assert bridge.post(bridge_token, body).json()["event_id"] == answer["event_id"]

    (event,) = wait_for_events(resource_id)
    settle(bridge, bridge_token)
    assert len(pushed_events(resource_id)) == 1
    assert str(event.id) == answer["event_id"]
    assert event.event == EVENT_NAME
    assert event.resource.id == resource_id
    assert event.resource["prefect.resource.name"] == f"{namespace}/web"
    assert event.resource["acr.region"] == "cn-shanghai"
    assert {k: event.payload[k] for k in ("tag", "digest", "pushed_at", "repo_full_name")} == {
        "tag": "2024.06.1",
        "digest": DIGEST,
        "pushed_at": "2016-11-29 12:25:46",
        "repo_full_name": f"{namespace}/web",
    }
    assert (event.payload["region"], event.payload["namespace"], event.payload["name"]) == (
        "cn-shanghai",
        namespace,
        "web",
    )


def test_rejected_requests_emit_nothing(bridge: Bridge, bridge_token: str) -> None:
    namespace = unique_namespace()
    good = push_body(namespace=namespace, name="web")
    bad_tag = push_body(namespace=namespace, name="web", tag="-nope")
    answers = [
        (bridge.post(None, good), 401),
        (bridge.post("wrong", good), 401),
        (bridge.post(bridge_token + "x", good), 401),
        (bridge.post(bridge_token, bad_tag), 400),
        (bridge.post(bridge_token, b"{not json"), 400),
        (bridge.post(bridge_token, encode({**good, "pad": "x" * 70_000})), 400),
        (bridge.http.get("/acr", params={"token": bridge_token}), 405),
        (bridge.http.post("/elsewhere", params={"token": bridge_token}, json=good), 404),
    ]
    for response, status in answers:
        assert response.status_code == status, response.text
        assert bridge_token not in response.text
    assert answers[3][0].json()["field"] == "push_data.tag"
    assert bridge.http.get("/health").json() == {"ok": True}

    settle(bridge, bridge_token)
    assert pushed_events(f"acr.repo.cn-hangzhou.{namespace}/web") == []
    assert bridge_token not in bridge.output()


def test_an_event_survives_the_bridge_being_killed_right_after_the_202(
    api_url: str, bridge_token: str
) -> None:
    # This one reads its token from the environment.
    killed = Bridge(api_url, env={webhook.TOKEN_ENV: bridge_token})
    namespace = unique_namespace()
    response = killed.post(bridge_token, push_body(namespace=namespace, name="api", tag="9"))
    assert response.status_code == 202
    killed.stop(signal.SIGKILL)
    (event,) = wait_for_events(f"acr.repo.cn-hangzhou.{namespace}/api")
    assert str(event.id) == response.json()["event_id"]
    assert bridge_token not in killed.output()


def test_without_a_reachable_prefect_api_a_push_is_503(bridge_token: str) -> None:
    with socket_nobody_listens_on() as dead_url:
        orphan = Bridge(dead_url, "--token", bridge_token)
        try:
            response = orphan.post(bridge_token, push_body())
            assert response.status_code == 503
            assert "re-sending" in response.json()["message"]
        finally:
            assert orphan.stop() == 0
    assert bridge_token not in orphan.output()


@contextmanager
def socket_nobody_listens_on() -> Iterator[str]:
    """An API URL on a port that is bound but never listened on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"


def test_websocket_fallback_delivers_too(prefect_harness: None) -> None:
    """The path taken when an API has no POST /events: Prefect's websocket events client."""
    from prefect.client.orchestration import get_client

    namespace = unique_namespace()
    event = parse_push(encode(push_body(namespace=namespace, name="ws"))).to_event()

    async def deliver() -> None:
        async with get_client() as prefect:
            await PrefectApiDelivery(prefect, websocket=True)(event)

    asyncio.run(deliver())
    (received,) = wait_for_events(f"acr.repo.cn-hangzhou.{namespace}/ws")
    assert received.id == event.id


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        ((), {}, "no token"),
        (("--token", ""), {}, "no token"),
        ((), {webhook.TOKEN_ENV: ""}, "no token"),
        (("--token", "tok-unused"), {"PREFECT_API_URL": ""}, "PREFECT_API_URL"),
    ],
)
def test_it_refuses_to_start_with_a_one_line_reason(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], reason: str
) -> None:
    child_env = {k: v for k, v in os.environ.items() if k != webhook.TOKEN_ENV}
    child_env.update(PREFECT_HOME=str(tmp_path), PREFECT_API_URL="http://127.0.0.1:9/api")
    child_env.update(env)
    done = subprocess.run(
        crossdeploy("webhook", "serve", "--port", "0", *args),
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("crossdeploy webhook serve: ")
    assert reason in lines[0]
    assert "tok-unused" not in done.stderr


def test_the_readme_cloud_webhook_template_makes_the_same_event() -> None:
    """The Prefect Cloud alternative in the README yields what the bridge emits."""
    from jinja2.sandbox import SandboxedEnvironment

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (template,) = re.findall(r"```jinja\n(.*?)```", readme, re.DOTALL)
    rendered = json.loads(SandboxedEnvironment().from_string(template).render(body=DOCUMENTED))
    bridged = parse_push(encode(DOCUMENTED))
    assert rendered["event"] == EVENT_NAME
    assert rendered["resource"] == bridged.resource()
    assert rendered["payload"] == {
        key: value for key, value in bridged.payload().items() if key in rendered["payload"]
    }
    assert set(rendered["payload"]) >= {"tag", "digest", "pushed_at", "repo_full_name", "region"}
