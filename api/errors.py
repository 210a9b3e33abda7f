"""Every failure leaves the gateway as JSON `{"error", "detail"}` with the status that fits it.

One table maps our error types (store, runtime, auth, validation) to statuses, so route code raises
what happened and never builds error responses by hand. Unexpected exceptions become a bare 500:
the message is logged server-side, never sent (it might hold a path, a token or a stack).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import AuthError, PasswordRuleError
from controller.runtime.base import RuntimeError_, RuntimeUnavailable
from controller.store.base import InvalidObject, StoreError

log = logging.getLogger("clawpen.api")


class ApiError(Exception):
    """An error with its HTTP status, message and optional detail, raised by route code."""

    def __init__(self, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def field_errors(err: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """pydantic errors as [{field, message}], `field` a dotted path in the request body."""
    out = []
    for e in err.errors(include_url=False, include_input=False):
        loc = [p for p in (*prefix, *e["loc"]) if not (isinstance(p, str) and "[" in p)]
        out.append(
            {
                "field": ".".join(str(p) for p in loc) or "body",
                "message": e["msg"].removeprefix("Value error, "),
            }
        )
    return out


def invalid(errors: list[dict[str, str]]) -> ApiError:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return ApiError(422, f"invalid request: {summary}", errors)


def error_response(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.detail, exc.headers)


async def auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, str(exc), headers=headers)


async def password_rule_error(request: Request, exc: Exception) -> Response:
    return error_response(422, str(exc), [{"field": "password", "message": str(exc)}])


async def store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    if isinstance(exc, InvalidObject):
        return error_response(exc.status, "stored object is invalid", exc.message)
    return error_response(exc.status, str(exc))


async def runtime_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RuntimeUnavailable):
        return error_response(503, "runtime unavailable", str(exc))
    # Anything else the runtime refuses (no workload yet, image missing...) is a state problem.
    return error_response(409, str(exc), getattr(exc, "reason", None))


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail or "error", headers=dict(exc.headers or {}))


async def storage_error(request: Request, exc: Exception) -> Response:
    """The disk under CLAWPEN_HOME said no: name the cause (writes are atomic, nothing is half-written)."""
    assert isinstance(exc, OSError)
    where = " (CLAWPEN_HOME)"  # the path itself stays in the server's log, not in answers
    log.warning("storage error on %s %s: %s", request.method, request.url.path, exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return error_response(507, f"insufficient storage: no space left on the disk holding the data{where}")
    if exc.errno == errno.EROFS:
        return error_response(503, f"storage unavailable: the data directory is on a read-only file system{where}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return error_response(503, f"storage unavailable: permission denied{where}")
    if exc.errno == errno.EIO:
        return error_response(503, f"storage unavailable: input/output error{where}")
    return await unexpected(request, exc)


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return error_response(500, "internal error", "see the gateway's log")


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    AuthError: auth_error,
    PasswordRuleError: password_rule_error,
    StoreError: store_error,
    RuntimeError_: runtime_error,
    HTTPException: http_exception,
    OSError: storage_error,
    Exception: unexpected,
}
