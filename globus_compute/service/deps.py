"""What every route needs: the service context, the caller, ids, and fast JSON in and out.

Hot routes parse bodies with ``orjson`` and validate by hand, and answer with pre-encoded
JSON, skipping pydantic and ``jsonable_encoder`` (each would cost milliseconds on a 1000-task
document); their request schemas are still published in OpenAPI via ``openapi_extra``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from globus_compute.service.config import ServiceConfig
from globus_compute.service.errors import ServiceError, invalid
from globus_compute.service.identity import User
from globus_compute.service.notify import Notifier
from globus_compute.service.store import Store

log = logging.getLogger(__name__)

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_bearer = HTTPBearer(auto_error=False, description="A local identity's token")


@dataclass
class ServiceContext:
    """The per-app objects routes share (kept on ``app.state.ctx``)."""

    config: ServiceConfig
    store: Store
    notifier: Notifier


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def current_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The identity of the bearer token; 401 when it is missing or unknown."""
    if creds is None or not creds.credentials:
        raise ServiceError(
            401, "UNAUTHORIZED", "Missing bearer token", {"WWW-Authenticate": "Bearer"}
        )
    user = get_ctx(request).store.user_for_token(creds.credentials)
    if user is None:
        raise ServiceError(
            401, "UNAUTHORIZED", "Invalid or unknown bearer token", {"WWW-Authenticate": "Bearer"}
        )
    return user


#: Route parameter types: the authenticated caller and the service context.
CurrentUser = Annotated[User, Depends(current_user)]
Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def canonical_uuid(value: object) -> str | None:
    """``value`` as a canonical lowercase UUID string, or None if it is not a UUID string."""
    if not isinstance(value, str):
        return None
    if len(value) == 36 and _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def path_uuid(value: str, what: str) -> str:
    """A path id parsed case-insensitively; 404 for something that is not a UUID."""
    parsed = canonical_uuid(value)
    if parsed is None:
        raise ServiceError(404, "NOT_FOUND", f"{what} {value!r} is not a valid UUID")
    return parsed


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx explaining what is wrong with it."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(400, "BAD_REQUEST", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def json_response(data: Any, status_code: int = 200) -> Response:
    try:
        body = orjson.dumps(data)
    except TypeError:  # e.g. an integer over 64 bits in user-supplied metadata
        body = json.dumps(data).encode()
    return Response(body, status_code=status_code, media_type="application/json")


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` documenting a hand-parsed JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }


UUID_SCHEMA = {"type": "string", "format": "uuid"}
