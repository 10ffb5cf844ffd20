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


async def json_object(request: Request, *, lone_surrogates: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx explaining what is wrong with it.

    Args:
        lone_surrogates: Also accept strings holding lone surrogates (``"\\ud800"``): valid
            JSON, but not Unicode, so ``orjson`` refuses them. The caller must make what it
            stores valid text (the agent's results route: one task's exception text must not
            fail the batch it came in).
    """
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        body = _lenient_json(raw) if lone_surrogates else None
        if body is None:
            raise ApiError(400, "BAD_REQUEST", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def _lenient_json(raw: bytes) -> Any:
    """``raw`` parsed by the standard library, which keeps lone surrogates; None if invalid."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def json_response(data: Any, status_code: int = 200) -> Response:
    """``data`` as a JSON response, encoded once."""
    try:
        body = orjson.dumps(data)
    except TypeError:  # e.g. an integer over 64 bits in user-supplied metadata
        body = json.dumps(data).encode()
    return Response(body, status_code=status_code, media_type="application/json")
