"""Request size and rate limits, as a pure ASGI middleware in front of the routes.

The size limit is enforced before anything parses the body: a declared ``Content-Length`` over
the limit is refused at once, and a body without one is counted while it streams in. The body is
buffered here (it is at most the limit) and replayed to the app. The rate limit is a token
bucket per bearer token (per client address without one), answering 429 with ``Retry-After``,
which globus-sdk honours.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.errors import error_response
from globus_compute.service.tokens import hash_token

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Buckets idle this long are full again anyway; forgetting them bounds memory.
_BUCKET_IDLE_S = 600.0

#: An agent's results request may carry one result of up to the 10 MiB result limit plus its
#: envelope, so agent routes get a larger body limit than user requests.
AGENT_BODY_FACTOR = 3


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` stored."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_prune = clock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``; return 0 if allowed, else seconds until one is free."""
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if now - self._last_prune > _BUCKET_IDLE_S:
            self._prune(now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        self._last_prune = now
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < _BUCKET_IDLE_S}


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client hung up before sending the whole body: there is no request to act on."""


class LimitsMiddleware:
    """Enforce the body size limit and the per-identity rate limit.

    Agent routes are exempt from the rate limit (an agent uses its owner's token, and its
    claims and reports must not eat the owner's request budget) and accept bodies
    ``AGENT_BODY_FACTOR`` times larger (a single result may be as large as the user limit).

    Args:
        app: The wrapped ASGI app.
        max_body: Largest accepted body in bytes of a user request.
        bucket: Rate limiter, or None for no rate limit.
    """

    def __init__(self, app: ASGIApp, max_body: int, bucket: TokenBucket | None) -> None:
        self.app = app
        self.max_body = max_body
        self.bucket = bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        headers = {k: v for k, v in scope["headers"] if k in (b"content-length", b"authorization")}
        is_agent = scope["path"].startswith(AGENT_PREFIX)
        max_body = self.max_body * AGENT_BODY_FACTOR if is_agent else self.max_body
        if self.bucket is not None and not is_agent:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            client = scope.get("client") or ("?", 0)
            key = hash_token(auth) if auth else f"addr:{client[0]}"
            delay = self.bucket.take(key)
            if delay > 0:
                retry = str(max(1, math.ceil(delay)))
                resp = error_response(
                    429,
                    "TOO_MANY_REQUESTS",
                    f"Rate limit exceeded; retry after {retry} s",
                    request_id,
                    {"Retry-After": retry},
                )
                await resp(scope, receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > max_body
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send, request_id, max_body)
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(receive, max_body)
        except _TooLarge:
            await self._refuse(scope, receive, send, request_id, max_body)
            return
        except _Disconnected:
            # A truncated body must never reach a route: a cut-off submit that still parsed as
            # JSON would queue tasks nobody is waiting for. Nobody is left to answer either.
            log.debug("Client disconnected before sending the whole body; request dropped")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive, max_body: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, max_body: int
    ) -> None:
        resp = error_response(
            413,
            "TASK_PAYLOAD_TOO_LARGE",
            f"Request body exceeds the limit of {max_body} bytes; submit fewer or smaller "
            "tasks per request",
            request_id,
        )
        await resp(scope, receive, send)
