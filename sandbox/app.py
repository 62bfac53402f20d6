"""The ASGI app: the admin routes under `/_sandbox/`, and every other path as the cloud API."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.dispatch import Sandbox
from sandbox.faults import FaultRule
from sandbox.wire import MAX_BODY_BYTES, RawRequest


def create_app(sandbox: Sandbox) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def requests_log(_: Request) -> JSONResponse:
        return JSONResponse(sandbox.requests())

    async def state(_: Request) -> JSONResponse:
        return JSONResponse(await anyio.to_thread.run_sync(sandbox.state))

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
        routes=[
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/requests", requests_log, methods=["GET"]),
            Route("/_sandbox/state", state, methods=["GET"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/timing", timing, methods=["GET", "POST"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/{path:path}", api, methods=methods),
        ]
    )
