"""JSON in and out of the routes, with ``orjson`` and no pydantic on the hot paths.

Hot routes parse bodies with ``orjson`` (their content is checked by the service functions) and
answer with pre-encoded JSON, skipping pydantic and ``jsonable_encoder``: each would cost
milliseconds on a 1000-task document. Their request schemas are still published in OpenAPI
(``openapi.py``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from globus_compute.service.errors import ApiError, invalid


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx explaining what is wrong with it."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "BAD_REQUEST", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def json_response(data: Any, status_code: int = 200) -> Response:
    """``data`` as a JSON response, encoded once."""
    try:
        body = orjson.dumps(data)
    except TypeError:  # e.g. an integer over 64 bits in user-supplied metadata
        body = json.dumps(data).encode()
    return Response(body, status_code=status_code, media_type="application/json")
