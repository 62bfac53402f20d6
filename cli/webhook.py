"""The ACR image-push trigger bridge behind `crossdeploy webhook serve`.

An ACR repository trigger can only be given a URL, so the bridge listens for
`POST /acr?token=TOKEN` (contract: shared/contracts/interfaces.md section 5), checks the shared
secret, validates the push notification and turns it into the Prefect event `acr.image.pushed`
that the `deploy-on-image-push` deployment trigger waits for.

The notification format
-----------------------
Alibaba Cloud documents it in "Container Registry: Manage triggers" (Notification payload /
通知内容, https://www.alibabacloud.com/help/doc-detail/60949.htm, also
https://help.aliyun.com/document_detail/60949.html): on every new or updated tag that matches
the trigger's rule (all tags, a tag list or a regular expression), ACR sends
`POST <trigger URL>` with `Content-Type: application/json` and this body (the documented
example)::

    {
        "push_data": {
            "digest": "sha256:457f4aa83fc9a6663ab9d1b0a6e2dce25a12a943ed5bf2c1747c58d48bbb4917",
            "pushed_at": "2016-11-29 12:25:46",
            "tag": "latest"
        },
        "repository": {
            "date_created": "2016-10-28 21:31:42",
            "name": "repoTest",
            "namespace": "namespace",
            "region": "cn-hangzhou",
            "repo_authentication_type": "NO_CERTIFIED",
            "repo_full_name": "namespace/repoTest",
            "repo_origin_type": "NO_CERTIFIED",
            "repo_type": "PUBLIC"
        }
    }

The same shape appears in every integration found for it (Rancher's ACR webhook docs, several
open-source receivers), always with `pushed_at` as `YYYY-MM-DD HH:MM:SS` without a zone.

`parse_push` requires `push_data.{tag, digest, pushed_at}` and
`repository.{region, namespace, name, repo_full_name}` (strings of the right shape, with
`repo_full_name == namespace/name`); `date_created`, `repo_type`, `repo_authentication_type` and
`repo_origin_type` are optional and passed on when present; unknown keys are ignored. Anything
else is a 400 naming the field, and error messages never echo the values sent.

The event
---------
::

    event:    acr.image.pushed
    resource: {"prefect.resource.id": "acr.repo.<region>.<namespace>/<name>",
               "prefect.resource.name": "<namespace>/<name>",
               "acr.region": ..., "acr.namespace": ..., "acr.repository": ...}
    payload:  {"tag", "digest", "pushed_at", "repo_full_name", "region", "namespace", "name",
               plus the optional repository fields when sent}
    id:       uuid5 of (resource id, tag, digest, pushed_at)

The id is derived from the push, so a notification delivered twice (ACR re-sending it, or a
retry after a lost 202) is the same event: Prefect stores events and evaluates triggers once
per id, so it cannot start two deploys.

Delivery
--------
`prefect.events.emit_event` is fire-and-forget: it queues the event for the process-wide
`EventsWorker` (a `QueueService` thread that streams events over the `/events/in` websocket)
and returns at once; a failure to send is logged and dropped, and the websocket client only
"checkpoints" with a ping every 700 events or 30 s. The worker drains its queue at interpreter
exit, but a crash, SIGKILL or an unreachable API after the 202 would lose the event silently.
So the bridge does not use it: it builds the same `prefect.events.Event` (same validation and
size limit) and posts it with the Prefect client of the configured API
(`get_client()`, i.e. PREFECT_API_URL and PREFECT_API_KEY) to `POST /events`, which a Prefect
server answers with 204 only after publishing the event to its event pipeline (persistence and
automations). The 202 is sent only after that answer. Should the API not offer `POST /events`
(404/405), the bridge falls back to Prefect's websocket events client for that and later
events, and answers only after the event was sent and the socket closed cleanly. If the API
cannot be reached or refuses the event within 20 s (the client retries 408/429/502/503 and
timeouts itself), the answer is 503 and nothing is acknowledged; a re-sent notification is
safe because of the derived id. Nothing is buffered in the process, so stopping or killing it
right after a 202 loses nothing; on SIGTERM uvicorn finishes in-flight requests first.

The token is compared with `hmac.compare_digest`, never logged (uvicorn's access log is off;
the bridge's own stderr lines carry no query strings) and never echoed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.events import Event

EVENT_NAME = "acr.image.pushed"
TOKEN_ENV = "CROSSDEPLOY_WEBHOOK_TOKEN"  # noqa: S105 (the variable's name, not a secret)
LISTENING_PREFIX = "webhook listening on"
MAX_BODY_BYTES = 64 * 1024
DELIVERY_TIMEOUT_SECONDS = 20.0

# A fixed namespace for the event ids derived from pushes (uuid5).
_EVENT_ID_NAMESPACE = uuid.UUID("6f0f8a52-4c1e-5b8e-9a57-3b1f0e1d7c2a")


# --- the payload ------------------------------------------------------------------------------


class PayloadError(ValueError):
    """A malformed push notification: the field (dotted path) and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# Docker tag grammar: a word character, then up to 127 of word characters, '.' and '-'.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A path component of a repository name: alphanumeric runs joined by '.', '_', '__' or dashes.
# Upper case is accepted because Alibaba's own example uses it ("repoTest").
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*"
_NAMESPACE = re.compile(_COMPONENT)
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")  # Enterprise Edition allows a/b
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+){1,4}")  # cn-hangzhou, ap-southeast-1, ...
# OCI digest grammar: algorithm ":" encoded.
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,256}")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_PUSHED_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_INFO = re.compile(r"[\x20-\x7e]{0,128}")  # printable ASCII, for the informational fields
_INFO_FIELDS = ("date_created", "repo_type", "repo_authentication_type", "repo_origin_type")


@dataclass(frozen=True)
class AcrPush:
    """One validated ACR push notification."""

    tag: str
    digest: str
    pushed_at: str
    region: str
    namespace: str
    name: str
    repo_full_name: str
    info: tuple[tuple[str, str], ...] = ()
    """The optional repository fields that were sent (date_created, repo_type, ...)."""

    @property
    def resource_id(self) -> str:
        return f"acr.repo.{self.region}.{self.namespace}/{self.name}"

    @property
    def event_id(self) -> uuid.UUID:
        key = "\n".join((self.resource_id, self.tag, self.digest, self.pushed_at))
        return uuid.uuid5(_EVENT_ID_NAMESPACE, key)

    def resource(self) -> dict[str, str]:
        return {
            "prefect.resource.id": self.resource_id,
            "prefect.resource.name": self.repo_full_name,
            "acr.region": self.region,
            "acr.namespace": self.namespace,
            "acr.repository": self.name,
        }

    def payload(self) -> dict[str, str]:
        return {
            "tag": self.tag,
            "digest": self.digest,
            "pushed_at": self.pushed_at,
            "repo_full_name": self.repo_full_name,
            "region": self.region,
            "namespace": self.namespace,
            "name": self.name,
            **dict(self.info),
        }

    def to_event(self) -> Event:
        """The `acr.image.pushed` event, validated by Prefect's own model."""
        from prefect.events import Event

        return Event.model_validate(
            {
                "event": EVENT_NAME,
                "resource": self.resource(),
                "payload": self.payload(),
                "id": self.event_id,
            }
        )


def parse_push(body: bytes) -> AcrPush:
    """Validate an ACR trigger body; raises PayloadError naming the first bad field."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError("body", f"is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError("body", "is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise PayloadError("body", "is not a JSON document") from None
    root = _object(data, "body")
    push_data = _object(_member(root, "push_data", ""), "push_data")
    repository = _object(_member(root, "repository", ""), "repository")

    tag = _string(push_data, "tag", "push_data")
    if not _TAG.fullmatch(tag):
        raise PayloadError(
            "push_data.tag",
            "must be an image tag: 1-128 letters, digits, '_', '.' or '-',"
            " not starting with '.' or '-'",
        )
    digest = _string(push_data, "digest", "push_data")
    if not _valid_digest(digest):
        raise PayloadError(
            "push_data.digest", "must be an image digest such as sha256:<64 hex digits>"
        )
    pushed_at = _string(push_data, "pushed_at", "push_data")
    if not _valid_time(pushed_at):
        raise PayloadError(
            "push_data.pushed_at", "must be a date and time such as 2016-11-29 12:25:46"
        )

    region = _string(repository, "region", "repository")
    if len(region) > 32 or not _REGION.fullmatch(region):
        raise PayloadError("repository.region", "must be a region id such as cn-hangzhou")
    namespace = _string(repository, "namespace", "repository")
    if len(namespace) > 128 or not _NAMESPACE.fullmatch(namespace):
        raise PayloadError(
            "repository.namespace",
            "must be 1-128 letters and digits, separated by single '.', '_' or '-'",
        )
    name = _string(repository, "name", "repository")
    if len(name) > 256 or not _NAME.fullmatch(name):
        raise PayloadError(
            "repository.name",
            "must be 1-256 letters and digits, separated by single '.', '_', '-' or '/'",
        )
    repo_full_name = _string(repository, "repo_full_name", "repository")
    if repo_full_name != f"{namespace}/{name}":
        raise PayloadError("repository.repo_full_name", "must be <namespace>/<name>")

    info: list[tuple[str, str]] = []
    for key in _INFO_FIELDS:
        if repository.get(key) is None:
            continue
        value = _string(repository, key, "repository")
        if not _INFO.fullmatch(value):
            raise PayloadError(f"repository.{key}", "must be up to 128 printable ASCII characters")
        info.append((key, value))

    return AcrPush(
        tag=tag,
        digest=digest,
        pushed_at=pushed_at,
        region=region,
        namespace=namespace,
        name=name,
        repo_full_name=repo_full_name,
        info=tuple(info),
    )


def _reject_constant(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _member(obj: dict[str, Any], key: str, parent: str) -> Any:
    field = f"{parent}.{key}" if parent else key
    if obj.get(key) is None:
        raise PayloadError(field, "is missing")
    return obj[key]


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(field, "must be a JSON object")
    return value


def _string(obj: dict[str, Any], key: str, parent: str) -> str:
    value = _member(obj, key, parent)
    if not isinstance(value, str):
        raise PayloadError(f"{parent}.{key}", "must be a string")
    return value


def _valid_digest(digest: str) -> bool:
    if len(digest) > 300 or not _DIGEST.fullmatch(digest):
        return False
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    return length is None or (len(encoded) == length and bool(_HEX.fullmatch(encoded)))


def _valid_time(value: str) -> bool:
    if len(value) > 40 or not _PUSHED_AT.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- delivery ---------------------------------------------------------------------------------

Deliver = Callable[["Event"], Awaitable[None]]
"""Hands an event to Prefect and returns only once Prefect accepted it; raises DeliveryError."""


class DeliveryError(Exception):
    """The event could not be handed to the Prefect API (the message names no secrets)."""


class PrefectApiDelivery:
    """Delivers events with the Prefect client of the configured API, acknowledged.

    `POST /events` first (answered after the server published the event); if the API does not
    offer it (404/405), Prefect's websocket events client from then on.
    """

    def __init__(self, client: PrefectClient, *, websocket: bool = False) -> None:
        self._client = client
        self.websocket = websocket

    async def __call__(self, event: Event) -> None:
        if not self.websocket:
            try:
                await self._post(event)
                return
            except _EndpointMissingError:
                self.websocket = True
        await self._stream(event)

    async def _post(self, event: Event) -> None:
        import httpx

        try:
            response = await self._client.request(
                "POST", "/events", json=[event.model_dump(mode="json")]
            )
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status in (404, 405):
                raise _EndpointMissingError from None
            raise DeliveryError(f"the Prefect API answered {status} to POST /events") from None
        except Exception as exc:
            raise DeliveryError(f"the Prefect API is unreachable ({type(exc).__name__})") from None

    async def _stream(self, event: Event) -> None:
        from prefect.events.clients import get_events_client

        try:
            async with get_events_client(reconnection_attempts=2) as events:
                await events.emit(event)
        except Exception as exc:
            raise DeliveryError(
                f"the Prefect events websocket failed ({type(exc).__name__})"
            ) from None


class _EndpointMissingError(Exception):
    pass


# --- the HTTP app -----------------------------------------------------------------------------


def create_app(token: str, deliver: Deliver | None = None) -> Starlette:
    """The bridge: POST /acr?token=..., GET /health. Without `deliver`, the Prefect API."""
    if not token:
        raise ValueError("an empty token would let anyone in")
    bridge = _Bridge(token.encode("utf-8", "surrogatepass"), deliver)
    app = Starlette(
        routes=[
            Route("/acr", bridge.acr, methods=["POST"]),
            Route("/health", _health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
        lifespan=bridge.lifespan,
    )
    # No 307 from /acr/ to /acr: the redirect would repeat the query, token included.
    app.router.redirect_slashes = False
    return app


class _Bridge:
    def __init__(self, token: bytes, deliver: Deliver | None) -> None:
        self._token = token
        self._deliver = deliver

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self._deliver is not None:
            yield
            return
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            self._deliver = PrefectApiDelivery(client)
            try:
                yield
            finally:
                self._deliver = None

    def _authorized(self, request: Request) -> bool:
        given = request.query_params.getlist("token")
        if len(given) != 1:
            return False
        return hmac.compare_digest(given[0].encode("utf-8", "surrogatepass"), self._token)

    async def acr(self, request: Request) -> Response:
        peer = request.client.host if request.client else "-"
        if not self._authorized(request):
            _log(f"401 from {peer}: missing or wrong token")
            return JSONResponse(
                {"error": "unauthorized", "message": "missing or wrong token"}, status_code=401
            )
        try:
            push = parse_push(await _read_body(request))
        except PayloadError as exc:
            _log(f"400 from {peer}: {exc.field} {exc.problem}")
            return JSONResponse(
                {"error": "invalid ACR push payload", "field": exc.field, "message": exc.problem},
                status_code=400,
            )
        except ClientDisconnect:
            _log(f"400 from {peer}: the client went away before sending the body")
            return JSONResponse({"error": "incomplete request"}, status_code=400)
        event = push.to_event()
        deliver = self._deliver
        try:
            if deliver is None:
                raise DeliveryError("the bridge is not connected to a Prefect API")
            async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
                await deliver(event)
        except (DeliveryError, TimeoutError) as exc:
            reason = str(exc) or f"no answer from the Prefect API in {DELIVERY_TIMEOUT_SECONDS:g}s"
            _log(f"503 from {peer}: {push.resource_id}:{push.tag} not delivered: {reason}")
            return JSONResponse(
                {
                    "error": "event not delivered",
                    "message": f"{reason}; re-sending this notification is safe",
                },
                status_code=503,
            )
        _log(f"202 from {peer}: {EVENT_NAME} {push.resource_id}:{push.tag} event {event.id}")
        return JSONResponse(
            {
                "event": EVENT_NAME,
                "event_id": str(event.id),
                "resource_id": push.resource_id,
                "tag": push.tag,
            },
            status_code=202,
        )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadError("body", f"is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadError("body", f"is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


async def _health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404/405 and friends as JSON; never repeats the URL (its query holds the token)."""
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _log(line: str) -> None:
    sys.stderr.write(f"webhook: {line}\n")
    sys.stderr.flush()


# --- serving ----------------------------------------------------------------------------------


def serve(*, host: str, port: int, token: str) -> None:
    """Run the bridge until SIGINT/SIGTERM. Raises ValueError (bad setup) or OSError (bind)."""
    from prefect.settings import PREFECT_API_URL

    from sandbox.serving import bind, exit_on_sigterm, run

    if not token:
        raise ValueError(f"no token: pass --token or set {TOKEN_ENV}")
    if not PREFECT_API_URL.value():
        raise ValueError(
            "PREFECT_API_URL is not set: point it at the Prefect server or Cloud workspace"
            " that should receive the events"
        )
    exit_on_sigterm()
    sock = bind(host, port)
    try:
        run(create_app(token), sock, LISTENING_PREFIX, lifespan="on")
    finally:
        sock.close()
