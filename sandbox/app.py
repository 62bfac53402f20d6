"""The ASGI app: the admin routes under `/_sandbox/`, and every other path as the cloud API."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.dispatch import SECRET_FIELDS, Sandbox
from sandbox.faults import FaultRule
from sandbox.wire import MAX_BODY_BYTES, RawRequest


def create_app(sandbox: Sandbox) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def requests_log(_: Request) -> JSONResponse:
        return JSONResponse(sandbox.requests())

    async def state(_: Request) -> JSONResponse:
        return JSONResponse(await anyio.to_thread.run_sync(sandbox.state))

    async def secrets(request: Request) -> JSONResponse:
        """Every secret value held or issued (unmasked), for leak scans; loopback callers only."""
        if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
            return JSONResponse({"Code": "Forbidden", "Message": "loopback only"}, 403)

        def collect() -> list[str]:
            with sandbox.store.transaction() as tx:
                return sorted(set(_secret_values(tx.dump())))

        return JSONResponse(await anyio.to_thread.run_sync(collect))

    async def refused(_: Request, exc: Exception) -> Response:
        """Routing refusals (a method no route takes) answered like the API: a code, in JSON."""
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        code = "UnsupportedHTTPMethod" if status == 405 else "InvalidRequest"
        return JSONResponse(
            {"Code": code, "Message": f"The request was refused ({status})."}, status
        )

    async def faults(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            sandbox.faults.clear()
            return JSONResponse({"rules": []})
        if request.method == "POST":
            try:
                data: Any = json.loads(await request.body())
                raw_rules = data["rules"] if isinstance(data, dict) else None
                if not isinstance(raw_rules, list):
                    raise ValueError('the body is {"rules": [...]}')
                rules = [FaultRule.model_validate(r) for r in raw_rules]
            except (ValueError, KeyError, ValidationError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            sandbox.faults.set(rules)
        return JSONResponse({"rules": sandbox.faults.describe()})

    async def timing(request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                data: Any = json.loads(await request.body())
                if not isinstance(data, dict):
                    raise ValueError('the body is {"change_order_seconds": ..., ...}')
                sandbox.set_timing(data)
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sandbox.world.timing.model_dump())

    async def clock(request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                data: Any = json.loads(await request.body())
                if not isinstance(data, dict) or set(data) != {"advance_seconds"}:
                    raise ValueError('the body is {"advance_seconds": N}')
                sandbox.clock.advance(float(data["advance_seconds"]))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"offset_seconds": sandbox.clock.offset, "now": sandbox.clock.now()})

    async def reset(_: Request) -> JSONResponse:
        await anyio.to_thread.run_sync(sandbox.reset)
        return JSONResponse({"ok": True})

    async def api(request: Request) -> Response:
        received = time.time()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse(
                {"Code": "RequestEntityTooLarge", "Message": "The request body is too large."},
                status_code=413,
            )
        raw = RawRequest(
            method=request.method,
            path=request.url.path,
            query_string=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=received,
        )
        reply = await anyio.to_thread.run_sync(sandbox.handle, raw)
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    return Starlette(
        exception_handlers={HTTPException: refused},
        routes=[
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/requests", requests_log, methods=["GET"]),
            Route("/_sandbox/state", state, methods=["GET"]),
            Route("/_sandbox/secrets", secrets, methods=["GET"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/timing", timing, methods=["GET", "POST"]),
            Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/{path:path}", api, methods=methods),
        ],
    )


def _secret_values(value: Any, inside: bool = False) -> list[str]:
    """Every non-empty text under a secret field (those `/_sandbox/state` masks), however deep."""
    if isinstance(value, dict):
        return [
            text
            for key, item in value.items()
            for text in _secret_values(item, inside or key in SECRET_FIELDS)
        ]
    if isinstance(value, list):
        return [text for item in value for text in _secret_values(item, inside)]
    return [str(value)] if inside and isinstance(value, str) and value else []
