"""API errors as the real services return them: an HTTP status, a code and a message.

Handlers raise `ApiError`; the dispatcher renders it in the product's error envelope. Codes and
messages follow `shared/reference/alibaba-api.md` (including the upstream typos).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error response: the code is what clients branch on, never the message."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def not_found_action(action: str) -> ApiError:
    return ApiError(
        404,
        "InvalidAction.NotFound",
        f"Specified api is not found, please check your url and method. Action: {action}",
    )


def invalid_version(version: str) -> ApiError:
    return ApiError(400, "InvalidVersion", f"Specified parameter Version is not valid: {version}")


def missing_parameter(name: str) -> ApiError:
    return ApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def invalid_parameter(name: str, reason: str) -> ApiError:
    return ApiError(400, "InvalidParameter", f'The parameter "{name}" is invalid: {reason}')


def internal_error() -> ApiError:
    return ApiError(500, "InternalError", "An internal error occurred.")


def throttled() -> ApiError:
    return ApiError(400, "Throttling.User", "Request was denied due to user flow control.")
