"""The four routes a task always takes, served without FastAPI's per-request machinery.

A lone task crosses the service in four requests: its submit, the agent's claim, the agent's
results, and the poll that brings the result back (``batch_status``); under load these are
nearly all the requests there are. Through FastAPI each pays for route matching, dependency
solving, the exception and exit-stack middlewares and a ``Request`` object before the route's
own work begins: about a quarter of the event loop's time per ``batch_status`` call, measured
with py-spy on the shared 2-core development machine.

:class:`HotRoutes` is a pure ASGI layer just inside the limits middleware, which has by then
authenticated the caller and read, bounded and replayed the body. A request it recognises
exactly (``POST``, one of the four paths with a non-empty id, no query string except
``batch_status``'s ``wait=<decimal number>``) it answers by calling the same answer functions
as the FastAPI routes (``routes/tasks.py``, ``routes/agent.py``), with the same error bodies
(``errors.response_for``). Everything else (other routes, other methods, query strings it does
not parse, a missing identity) goes on to the FastAPI app, which answers as it always has, its
validation errors included; the FastAPI routes also keep documenting these operations in the
OpenAPI schema.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import response_for
from globus_compute.service.limits import ASGIApp, Receive, Scope, Send
from globus_compute.service.records import User
from globus_compute.service.routes.agent import answer_claim, answer_results
from globus_compute.service.routes.tasks import answer_batch_status, answer_submit

log = logging.getLogger(__name__)

__all__ = ["HotRoutes"]

_AGENT_PARTS = AGENT_PREFIX.split("/")  # ["", "agent", "v1", "endpoints"]
#: ``wait`` as the Client sends it (``f"{wait:g}"`` of a small positive number); anything else
#: is left to FastAPI's validation.
_WAIT = re.compile(rb"wait=(\d+(?:\.\d*)?|\.\d+)")

#: How one hot request is answered: (ctx, user, path id, body, scope, receive) -> Response.
_Answer = Callable[[ServiceContext, User, str, bytes, Scope, Receive], Awaitable[Response]]


async def _submit(
    ctx: ServiceContext, user: User, eid: str, raw: bytes, scope: Scope, receive: Receive
) -> Response:
    return await answer_submit(ctx, user, eid, raw, scope["state"]["request_id"])


async def _claim(
    ctx: ServiceContext, user: User, eid: str, raw: bytes, scope: Scope, receive: Receive
) -> Response:
    return await answer_claim(ctx, user, eid, raw, Request(scope, receive).is_disconnected)


async def _results(
    ctx: ServiceContext, user: User, eid: str, raw: bytes, scope: Scope, receive: Receive
) -> Response:
    return await answer_results(ctx, user, eid, raw)


_AGENT_ANSWERS: dict[str, _Answer] = {"claim": _claim, "results": _results}


class HotRoutes:
    """Serve the hot routes directly; pass every other request to ``app``.

    Args:
        app: The FastAPI app's inner stack (what the limits middleware would call).
        ctx: The service context.
    """

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._match(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        answer, ident, wait = route
        user = scope["state"]["auth"].user
        raw = await _read_body(receive)
        try:
            if answer is None:
                response = await answer_batch_status(self.ctx, user, raw, wait)
            else:
                response = await answer(self.ctx, user, ident, raw, scope, receive)
        except Exception as exc:
            request_id = scope["state"]["request_id"]
            response = response_for(exc, request_id, scope["method"], scope["path"])
        await response(scope, receive, send)

    @staticmethod
    def _match(scope: Scope) -> tuple[_Answer | None, str, float | None] | None:
        """(answer, path id, wait) of a hot request (answer None: batch status), else None."""
        auth = scope.get("state", {}).get("auth")
        if scope["method"] != "POST" or auth is None or auth.user is None:
            return None
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        if path == "/v2/batch_status":
            if not query:
                return None, "", None
            wait = _WAIT.fullmatch(query)
            return (None, "", float(wait.group(1))) if wait else None
        if query:
            return None
        parts = path.split("/")  # an empty id or a trailing slash leaves an empty part
        if len(parts) == 5 and parts[:3] == ["", "v3", "endpoints"] and parts[4] == "submit":
            return (_submit, parts[3], None) if parts[3] else None
        if len(parts) == len(_AGENT_PARTS) + 2 and parts[: len(_AGENT_PARTS)] == _AGENT_PARTS:
            answer = _AGENT_ANSWERS.get(parts[-1])
            if answer is not None and parts[-2]:
                return answer, parts[-2], None
        return None


async def _read_body(receive: Receive) -> bytes:
    """The body the limits middleware replays (one message, already whole)."""
    chunks: list[Any] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
