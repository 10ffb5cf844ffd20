"""Connections: how many the service holds, from whom, and how long one may take to ask.

What uvicorn (0.54, h11) offers, and why it is not enough on its own:

- ``timeout_keep_alive`` closes a connection idle *between* requests, but it is armed only once
  an answer went out, and cancelled by the first byte of the next request. A connection that
  never completes its first request head, or stalls inside the next one, is held for ever.
- ``limit_concurrency`` answers 503 to *requests* over the limit, yet accepts and keeps the
  connections themselves; at the process's open-file limit ``accept()`` fails, and asyncio logs
  a traceback per failed call, thousands a second.
- ``h11_max_incomplete_event_size`` (16 KiB) bounds the bytes of a request head, not its time.
  h11 and httptools are parsers without clocks; httptools' protocol arms the same keep-alive
  timer only.

So every connection is served by :class:`GuardedH11Protocol`, uvicorn's h11 protocol with:

- **a read deadline**: a connection waiting for a request head (from its opening, or from the
  end of its previous answer) must complete it within ``header_timeout_s``; one whose answer went
  out while the rest of its body still trickles in (a refused body, which uvicorn discards) must
  finish within ``body_timeout_s``. Then it is closed, with a 408 if it had begun a request.
- **admission** by :class:`ConnectionGuard`: at most ``max_connections`` at once, kept well below
  the open-file limit so ``accept()`` never runs out, and at most ``max_client_connections`` per
  client address. At a limit the newcomer evicts a connection waiting for a request head: the
  one that has waited longest among those that never completed a request (a half-open flood),
  else the longest idle one between requests; when every connection is busy with a request,
  the newcomer is answered 503 and closed. A flood of half-open connections thus costs the
  flood, not the clients that send whole requests.

The bodies of requests (who may send one, how many bytes, how fast) are ``limits.py``'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections, from whom, and how long they may take.

    Attributes:
        max_connections: Open connections at once.
        max_client_connections: Open connections of one client address.
        header_timeout_s: Time to deliver a complete request head.
        body_timeout_s: Time to deliver the rest of a body whose answer already went out.
        reserved_files: Open files kept free for everything else (the database, logs, and the
            connections accepted but not yet looked at, up to the listen backlog).
    """

    max_connections: int
    max_client_connections: int
    header_timeout_s: float
    body_timeout_s: float
    reserved_files: int = 320


def _canned(status: str, code: str, message: str) -> bytes:
    body = json.dumps({"code": code, "message": message, "request_id": str(uuid.uuid4())})
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\nretry-after: 1\r\n\r\n{body}"
    ).encode()


class ConnectionGuard:
    """Counts connections, in all and per client address, and picks who must make room.

    Args:
        limits: The limits to enforce.
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self.by_client: Counter[str] = Counter()
        #: Connections waiting for their client, oldest first: those that never completed a
        #: request (evicted first), and those idle after answers.
        self._fresh: dict[GuardedH11Protocol, None] = {}
        self._idle: dict[GuardedH11Protocol, None] = {}
        self.refused = self.evicted = 0

    def capacity(self) -> int:
        """``max_connections``, or fewer if the open-file limit is lower."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.limits.max_connections
        return max(1, min(self.limits.max_connections, soft - self.limits.reserved_files))

    def admit(self, conn: GuardedH11Protocol) -> bool:
        """Count ``conn`` in, making room if needed; False if there is none (refuse it)."""
        client = conn.client_host
        if self.by_client[client] >= self.limits.max_client_connections:
            if not self._evict(client):
                return False
        if self.open >= self.capacity() and not self._evict(None):
            return False
        self.open += 1
        self.by_client[client] += 1
        return True

    def release(self, conn: GuardedH11Protocol) -> None:
        """``conn`` is gone (or evicted): stop counting it."""
        self.busy(conn)
        self.open -= 1
        self.by_client[conn.client_host] -= 1
        if self.by_client[conn.client_host] <= 0:
            del self.by_client[conn.client_host]

    def waiting(self, conn: GuardedH11Protocol) -> None:
        """``conn`` waits for its client (a request head, or the rest of a refused body)."""
        (self._idle if conn.served else self._fresh).setdefault(conn, None)

    def busy(self, conn: GuardedH11Protocol) -> None:
        """``conn`` carries a request the service is working on: never evicted."""
        self._fresh.pop(conn, None)
        self._idle.pop(conn, None)

    def _evict(self, client: str | None) -> bool:
        """Close the longest-waiting connection (of ``client``, or of anyone); False if none."""
        for waiting in (self._fresh, self._idle):
            for victim in waiting:
                if client is None or victim.client_host == client:
                    self.evicted += 1
                    victim.evict()
                    return True
        self.refused += 1
        return False


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline and admission by a :class:`ConnectionGuard`.

    Built by uvicorn for each connection, as ``functools.partial(GuardedH11Protocol,
    guard=...)`` (see ``server.py``).
    """

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.client_host = "?"
        #: Answers this connection has completed.
        self.served = 0
        self._admitted = False
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A Unix socket connection has no address; only the owner can reach that socket (its
        # directory is private), so its connections count as one client.
        self.client_host = self.client[0] if self.client is not None else "unix-socket"
        if not self.guard.admit(self):
            log.warning("Connection from %s refused: every connection is busy", self.client_host)
            transport.write(
                _canned(
                    "503 Service Unavailable",
                    "SERVICE_UNAVAILABLE",
                    "The service holds as many connections as it may; retry shortly",
                )
            )
            transport.close()
            return
        self._admitted = True
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        self.served += 1
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._admitted:
            self._admitted = False
            self.guard.release(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        """Make room for a newcomer: close this waiting connection now."""
        log.debug("Evicting an idle connection of %s", self.client_host)
        self._cancel_deadline()
        if self._admitted:
            self._admitted = False
            self.guard.release(self)
        self.transport.close()

    def _watch(self) -> None:
        """Arm the read deadline of the current phase, or disarm it while a request runs."""
        phase = self._reading_phase()
        if phase == self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if phase is None:
            self.guard.busy(self)
            return
        if phase == "head":
            self._head_bytes = 0
        self.guard.waiting(self)
        limits = self.guard.limits
        timeout = limits.header_timeout_s if phase == "head" else limits.body_timeout_s
        self._deadline = self.loop.call_later(timeout, self._expire)

    def _reading_phase(self) -> str | None:
        """``"head"`` while waiting for a request head, ``"discard"`` while the rest of a body
        nobody reads comes in; None while a request is being served (or the end is near)."""
        if self.transport is None or self.transport.is_closing():
            return None
        theirs = self.conn.their_state
        if theirs is h11.IDLE:
            return "head"
        if theirs is h11.SEND_BODY and (self.cycle is None or self.cycle.response_complete):
            return "discard"
        return None

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._phase == "head" and self._head_bytes:
            log.info("Closing a connection of %s: its request head was late", self.client_host)
            timeout = self.guard.limits.header_timeout_s
            self.transport.write(
                _canned(
                    "408 Request Timeout",
                    "REQUEST_TIMEOUT",
                    f"The request head did not arrive within {timeout:g} s",
                )
            )
        self.transport.close()
