"""Who may send what: authentication before any body is read, rate, size, memory and time limits.

A pure ASGI middleware in front of the routes. For each HTTP request, in this order:

1. **Who.** For a request with a body, or when there is a rate limit, the bearer token is
   looked up (``auth.identify_caller``, on the database thread); the outcome is kept in
   ``scope["state"]["auth"]`` for the routes.
2. **Rate.** A token bucket per identity, so no spelling of the header buys a second bucket.
   Requests without a valid token are counted per client address, so failed authentication is
   throttled and a stream of made-up tokens costs no memory. Agent routes of an authenticated
   caller are exempt (an agent uses its owner's token; its claims must not eat the owner's
   budget). Answers 429 with ``Retry-After``, which globus-sdk honours.
3. **Body.** A request that carries a body but no valid token is refused with 401 before one
   byte of the body is read. A declared ``Content-Length`` over the limit gets 413 at once; a
   body without one is counted while it streams in. The bytes of every body being received are
   reserved from the caller's share and from a service-wide budget (waiting briefly for room,
   else 503 with ``Retry-After``), so no client can make the service hold more than its share.
   The body must arrive within ``body_timeout_s`` (else 408 and the connection is closed).
4. The body, buffered here (it is at most the limit), is replayed to the app.

A refused body is never read: uvicorn discards what the client still sends, and the connection
guard (``connections.py``) closes a connection whose discarding takes longer than the body
timeout. The timeouts and limits of connections themselves are that module's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import Any

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.auth import Authentication, identify_caller
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import error_response
from globus_compute.service.store import StorageError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Buckets idle this long are full again anyway; forgetting them bounds memory.
_BUCKET_IDLE_S = 600.0
#: Most buckets kept at once (identities plus client addresses); the oldest go first.
MAX_BUCKETS = 10_000

#: An agent's results request may carry one result of up to the 10 MiB result limit plus its
#: envelope, so agent routes get a larger body limit than user requests.
AGENT_BODY_FACTOR = 3

#: How long a body waits for room in the bytes-in-flight budget before it is refused (503).
BUDGET_WAIT_S = 5.0

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CLOSE = {"Connection": "close"}


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` stored, per key."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._last_prune = clock()

    def take(self, key: Hashable) -> float:
        """Spend one token of ``key``; return 0 if allowed, else seconds until one is free."""
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if now - self._last_prune > _BUCKET_IDLE_S or len(self._buckets) >= MAX_BUCKETS:
            self._prune(now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        self._last_prune = now
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < _BUCKET_IDLE_S}
        while len(self._buckets) >= MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]  # the least recently added


class BodyBudget:
    """Bytes of request bodies being received at once: in all, and per identity.

    Args:
        total: Most bytes in flight for everyone together.
        per_client: Most bytes in flight for one identity.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.held: dict[Hashable, int] = {}
        self.held_total = 0
        self._changed = asyncio.Condition()

    def _clamped(self, n: int) -> int:
        return min(n, self.per_client, self.total)  # one body alone always fits eventually

    def _fits(self, client: Hashable, n: int) -> bool:
        return self.held_total + n <= self.total and self.held.get(client, 0) + n <= self.per_client

    async def reserve(self, client: Hashable, n: int, timeout: float) -> bool:
        """Reserve ``n`` bytes for ``client``, waiting up to ``timeout`` s; False if no room."""
        n = self._clamped(n)
        async with self._changed:
            room = self._changed.wait_for(lambda: self._fits(client, n))
            try:
                await asyncio.wait_for(room, timeout)
            except asyncio.TimeoutError:
                return False
            self.held[client] = self.held.get(client, 0) + n
            self.held_total += n
            return True

    async def release(self, client: Hashable, n: int) -> None:
        n = self._clamped(n)
        async with self._changed:
            left = self.held.get(client, 0) - n
            if left > 0:
                self.held[client] = left
            else:
                self.held.pop(client, None)
            self.held_total -= n
            self._changed.notify_all()


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client hung up before sending the whole body: there is no request to act on."""


class LimitsMiddleware:
    """Authenticate, then enforce the rate, body size, bytes-in-flight and body time limits.

    Args:
        app: The wrapped ASGI app.
        ctx: The service context: settings, and the store that knows the tokens.
        bucket: Rate limiter, or None for no rate limit.
    """

    def __init__(self, app: ASGIApp, ctx: ServiceContext, bucket: TokenBucket | None) -> None:
        self.app = app
        self.ctx = ctx
        self.bucket = bucket
        config = ctx.config
        self.max_body = config.max_request_bytes
        self.budget = BodyBudget(
            config.max_body_bytes_in_flight, config.max_client_body_bytes_in_flight
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        headers = {
            k: v
            for k, v in scope["headers"]
            if k in (b"content-length", b"authorization", b"transfer-encoding")
        }

        async def refuse(status: int, code: str, message: str, extra: dict[str, str]) -> None:
            await error_response(status, code, message, request_id, extra)(scope, receive, send)

        has_body = scope["method"] in _BODY_METHODS
        if not has_body and self.bucket is None:
            await self.app(scope, receive, send)  # the route looks the caller up if it must
            return
        try:
            auth = await identify_caller(self.ctx, headers.get(b"authorization"))
        except StorageError as exc:
            await refuse(503, "SERVICE_UNAVAILABLE", str(exc), {})
            return
        state["auth"] = auth
        is_agent = scope["path"].startswith(AGENT_PREFIX)
        retry = self._rate_limited(scope, auth, is_agent)
        if retry is not None:
            message = f"Rate limit exceeded; retry after {retry} s"
            await refuse(429, "TOO_MANY_REQUESTS", message, {"Retry-After": retry})
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        if auth.user is None:
            assert auth.problem is not None
            await refuse(401, "UNAUTHORIZED", auth.problem, {"WWW-Authenticate": "Bearer"})
            return
        max_body = self.max_body * AGENT_BODY_FACTOR if is_agent else self.max_body
        declared = _declared_length(headers)
        if declared is not None and declared > max_body:
            await refuse(413, "TASK_PAYLOAD_TOO_LARGE", _too_large(max_body), {})
            return
        expected = max_body if declared is None else declared
        share = ("user", auth.user.id)
        if expected and not await self.budget.reserve(share, expected, BUDGET_WAIT_S):
            log.info("%s: request bodies in flight at the limit; refused one", auth.user.name)
            await refuse(
                503,
                "SERVICE_UNAVAILABLE",
                "Too many request bytes in flight (yours or everybody's); retry shortly",
                {"Retry-After": "1"},
            )
            return
        try:
            await self._read_and_replay(scope, receive, send, refuse, max_body)
        finally:
            if expected:
                await self.budget.release(share, expected)

    def _rate_limited(self, scope: Scope, auth: Authentication, is_agent: bool) -> str | None:
        """Seconds to wait (``Retry-After``) if this request is over the rate limit, else None.

        Counted per identity; requests without a valid token per client address.
        """
        if self.bucket is None or (is_agent and auth.user is not None):
            return None
        client = scope.get("client") or ("?", 0)
        key = ("user", auth.user.id) if auth.user is not None else ("addr", client[0])
        delay = self.bucket.take(key)
        return str(max(1, math.ceil(delay))) if delay > 0 else None

    async def _read_and_replay(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        refuse: Callable[[int, str, str, dict[str, str]], Awaitable[None]],
        max_body: int,
    ) -> None:
        try:
            body = await asyncio.wait_for(
                self._read_body(receive, max_body), self.ctx.config.body_timeout_s
            )
        except _TooLarge:
            await refuse(413, "TASK_PAYLOAD_TOO_LARGE", _too_large(max_body), {})
            return
        except asyncio.TimeoutError:
            await refuse(
                408,
                "REQUEST_TIMEOUT",
                f"The request body did not arrive within {self.ctx.config.body_timeout_s:g} s",
                _CLOSE,
            )
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


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    """The declared body length; None when the body is chunked (or the length unreadable)."""
    raw = headers.get(b"content-length")
    if raw is None:
        return None if b"transfer-encoding" in headers else 0
    try:
        return int(raw)
    except ValueError:
        return None


def _too_large(max_body: int) -> str:
    return (
        f"Request body exceeds the limit of {max_body} bytes; submit fewer or smaller tasks per "
        "request"
    )
