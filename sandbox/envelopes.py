"""Success and error bodies in each product's own envelope (reference section 1.8)."""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.errors import ApiError


def success(
    envelope: str, payload: dict[str, Any], request_id: str, *, trace_id: bool = True
) -> dict[str, Any]:
    if envelope == "cr":
        return {"Code": "success", "IsSuccess": True, **payload, "RequestId": request_id}
    if envelope == "sae":
        trace = {"TraceId": uuid.uuid4().hex[:24]} if trace_id else {}
        body = {"Code": "200", "Message": "success", "Success": True, **trace, **payload}
        return {**body, "RequestId": request_id}
    return {**payload, "RequestId": request_id}


def error(envelope: str, err: ApiError, request_id: str, host: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestId": request_id,
        "HostId": host,
        "Code": err.code,
        "Message": err.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}",
        **err.extra,
    }
    if envelope == "cr":
        body["IsSuccess"] = False
    elif envelope == "sae":
        body.update(Success=False, ErrorCode=err.code, TraceId=uuid.uuid4().hex[:24])
    return body
