"""Error bodies of the service: every failure is JSON ``{"code", "message", "request_id"}``.

The reference client fills ``ComputeAPIError.code``/``.message`` only from string fields of a JSON
body, and retries every 5xx for ~15 s, so client mistakes must be 4xx with that body, including
FastAPI's own validation errors and 404s for unknown paths. The service's own trouble says what
it is: 507 for a full disk, 503 for a database file that is gone (``store/database.py``).

:class:`ApiError` is how a service function or route refuses a request. It lives only inside the
service and never reaches a user: clients see its body, which the SDK turns into its own errors
(``globus_compute.errors``), and the endpoint agent into ``ServiceRefused``.
"""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from globus_compute.service.store.database import StorageError, StorageFull

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "TASK_PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
    507: "INSUFFICIENT_STORAGE",
}


class ApiError(Exception):
    """A request the service refuses; becomes a JSON error response.

    Args:
        status: HTTP status (4xx for anything the caller can fix).
        code: Machine-readable code, e.g. ``TASK_PAYLOAD_TOO_LARGE``.
        message: Human-readable explanation of what to change.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, code, message, headers)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def unauthorized(message: str) -> ApiError:
    """401: no usable bearer token (the caller is told to send one)."""
    return ApiError(401, "UNAUTHORIZED", message, {"WWW-Authenticate": "Bearer"})


def not_found(what: str, ident: object) -> ApiError:
    """404: ``what`` does not exist, or the caller may not know that it does."""
    return ApiError(404, "NOT_FOUND", f"{what} {ident} not found")


def forbidden(message: str) -> ApiError:
    """403: the caller may see the resource but not do this to it."""
    return ApiError(403, "FORBIDDEN", message)


def conflict(message: str) -> ApiError:
    """409: the request contradicts what is stored (a name already taken)."""
    return ApiError(409, "CONFLICT", message)


def invalid(message: str) -> ApiError:
    """422: a well-formed JSON body whose content breaks a rule."""
    return ApiError(422, "VALIDATION_ERROR", message)


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"code": code, "message": message, "request_id": request_id or str(uuid.uuid4())}
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or str(uuid.uuid4())


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request"


def response_for(exc: Exception, request_id: str, method: str, path: str) -> Response:
    """The answer to a request whose handling raised ``exc`` (other than FastAPI's own
    validation and HTTP errors): a refusal, bad text, a storage failure, or a defect (500, with
    the traceback logged: call it from the ``except`` block).

    The FastAPI app's exception handlers and the hot routes (``hot_routes.py``) both use it, so a
    request gets the same error body whichever serves it.
    """
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, request_id, exc.headers)
    if isinstance(exc, UnicodeError):
        # Lone surrogates ("\ud800") are valid JSON escapes but cannot be stored as UTF-8.
        message = "Strings must be valid Unicode (no lone surrogates)"
        return error_response(422, "VALIDATION_ERROR", message, request_id)
    if isinstance(exc, StorageError):
        # Nothing was stored; the agent retries every 5xx, so its results wait for space.
        status = 507 if isinstance(exc, StorageFull) else 503
        log.warning("%s %s refused: %s", method, path, exc)
        return error_response(status, _STATUS_CODES[status], str(exc), request_id)
    log.exception("Unhandled error on %s %s", method, path)
    return error_response(500, "INTERNAL_ERROR", "Internal service error", request_id)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app produces a JSON body with string code/message/request_id."""

    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(
            422, "VALIDATION_ERROR", _describe_validation(exc), _request_id(request)
        )

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"No route {request.method} {request.url.path}"
        return error_response(
            exc.status_code, code, message, _request_id(request), dict(exc.headers or {})
        )

    async def on_error(request: Request, exc: Exception) -> Response:
        return response_for(exc, _request_id(request), request.method, request.url.path)

    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(UnicodeError, on_error)
    app.add_exception_handler(StorageError, on_error)
    app.add_exception_handler(Exception, on_error)
