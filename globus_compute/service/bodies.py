"""JSON in and out of the routes, with ``orjson`` and no pydantic on the hot paths.

Hot routes parse bodies with ``orjson`` (their content is checked by the service functions) and
answer with pre-encoded JSON, skipping pydantic and ``jsonable_encoder``: each would cost
milliseconds on a 1000-task document. Their request schemas are still published in OpenAPI
(``openapi.py``).

What JSON allows but the service cannot keep is refused here with a 4xx, not a 500 later:
nesting deeper than :data:`MAX_NESTING` (the parser accepts 1024 levels, the encoder 255), and
lone surrogates (``errors.py``; only the agent's results route takes them, to fail the one task
whose text holds them: ``actions/agent.py``). Integers beyond 64 bits, which ``orjson`` would
silently turn into floats, are parsed exactly instead, and stored and sent back exactly.

Big answers (results of many megabytes) are encoded on a worker thread, piece by piece: the
encoder holds the interpreter lock for as long as one call lasts, so one 10 MB result at a time
lets the event loop run in between.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import orjson
from fastapi import Request
from pydantic import AfterValidator
from starlette.responses import Response

from globus_compute.service.errors import ApiError, invalid

#: Deepest nesting of objects and arrays accepted in a request body.
MAX_NESTING = 64
#: An answer with more bytes of text than this is encoded on a worker thread.
OFFLOAD_BYTES = 1 << 20
#: Floats this big that are whole numbers may be integers orjson could not keep exact.
_INT64 = float(2**63)
#: A long list is encoded in about this many calls (a short one, item by item).
_LIST_PIECES = 256


def _shape(value: Any, limit: int = MAX_NESTING) -> tuple[int, bool]:
    """How deeply objects and arrays nest in ``value`` (counting stops just past ``limit``),
    and whether it holds a float that may have been an integer beyond 64 bits.

    On the path of every request body, hence the plain loop and exact type checks.
    """
    deepest, lossy = 0, False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is str:
                continue
            if kind is dict or kind is list:
                push((child, depth + 1))
            elif kind is float and abs(child) >= _INT64 and child.is_integer():
                lossy = True
    return deepest, lossy


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deeply objects and arrays nest in ``value``; counting stops just past ``limit``."""
    if not isinstance(value, (dict, list)):
        return 0
    return _shape(value, limit)[0]


def _nesting_checked(value: Any) -> Any:
    if nesting_depth(value) > MAX_NESTING:
        raise ValueError(f"nests objects or arrays deeper than {MAX_NESTING} levels")
    return value


#: A free-form JSON object in a pydantic body, nested at most :data:`MAX_NESTING` deep.
JsonObject = Annotated[dict[str, Any], AfterValidator(_nesting_checked)]


def parse_json(raw: bytes, *, lone_surrogates: bool = False) -> Any:
    """Parse a request body; integers beyond 64 bits stay exact.

    Args:
        lone_surrogates: Also accept strings holding lone surrogates (``"\\ud800"``): valid
            JSON, but not Unicode, so ``orjson`` refuses them. The caller must make what it
            stores valid text (the agent's results route: one task's exception text must not
            fail the batch it came in).

    Raises:
        ApiError: 400 for text that is not JSON, 422 for nesting deeper than
            :data:`MAX_NESTING`.
    """
    exact = False
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        value = _lenient_json(raw) if lone_surrogates else None
        if value is None:
            raise ApiError(400, "BAD_REQUEST", f"Request body is not valid JSON: {exc}") from None
        exact = True
    if not isinstance(value, (dict, list)):
        return value
    depth, lossy = _shape(value)
    if depth > MAX_NESTING:
        raise invalid(f"Request body nests objects or arrays deeper than {MAX_NESTING} levels")
    if lossy and not exact:
        # orjson reads integers beyond 64 bits as floats; the standard parser keeps them
        # exact (a float that merely looks like one parses the same either way).
        value = json.loads(raw)
    return value


def _lenient_json(raw: bytes) -> Any:
    """``raw`` parsed by the standard library, which keeps lone surrogates; None if invalid."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def json_object(request: Request, *, lone_surrogates: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx explaining what is wrong with it.

    Args:
        lone_surrogates: As for :func:`parse_json`.
    """
    return parse_object(await request.body(), lone_surrogates=lone_surrogates)


def parse_object(raw: bytes, *, lone_surrogates: bool = False) -> dict[str, Any]:
    """:func:`json_object` of a body already read."""
    body = parse_json(raw, lone_surrogates=lone_surrogates)
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def encode(data: Any) -> bytes:
    """``data`` as JSON; integers beyond 64 bits (kept exact from a request) included."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def encode_in_pieces(data: Any, depth: int = 2) -> bytes:
    """The same bytes as :func:`encode` would give, one object member or a few list items per
    encoder call (down to ``depth`` levels), so no one call holds the interpreter for long."""
    if depth > 0 and isinstance(data, dict) and len(data) > 1:
        members = (encode(str(k)) + b":" + encode_in_pieces(v, depth - 1) for k, v in data.items())
        return b"{" + b",".join(members) + b"}"
    if depth > 0 and isinstance(data, list) and len(data) > 1:
        step = max(1, len(data) // _LIST_PIECES)
        pieces = (encode(data[i : i + step])[1:-1] for i in range(0, len(data), step))
        return b"[" + b",".join(pieces) + b"]"
    return encode(data)


def json_response(data: Any, status_code: int = 200) -> Response:
    """``data`` as a JSON response, encoded once, here (for answers known to be small)."""
    return Response(encode(data), status_code=status_code, media_type="application/json")


async def json_answer(data: Any, text_bytes: int) -> Response:
    """``data`` as a JSON response; a big one is encoded on a worker thread, in pieces.

    Args:
        text_bytes: About how many bytes of text ``data`` holds (its results, payloads or
            code): the caller knows, where counting here would cost as much as encoding.
    """
    if text_bytes <= OFFLOAD_BYTES:
        return json_response(data)
    body = await asyncio.to_thread(encode_in_pieces, data)
    return Response(body, media_type="application/json")
