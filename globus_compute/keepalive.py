"""One keep-alive HTTP/1.1 connection to a Compute service, for the calls on the hot path.

A lone task crosses the HTTP boundary four times (submit, the agent's claim, its results post,
the result poll), so the cost of one small request is paid four times per task. Through
``requests`` and ``urllib3`` that cost is mostly theirs: merging session settings, hooks, the
adapter and pool, and the response object, on top of ``http.client`` doing the actual work. On
the shared 2-core development machine (cProfile and ``time.process_time`` over 500 calls of
``batch_status`` against the embedded service's socket) a call took about 0.7-0.9 ms of client
CPU through ``requests`` (with the environment lookups already off, see ``local_socket.mount``)
and about 0.2-0.3 ms through ``http.client`` alone.

:class:`KeepAliveConnection` is that ``http.client`` connection, kept open between calls, for
``http://`` URLs and the service's Unix socket (``http+unix://``, connected through
:func:`globus_compute.local_socket.connect`, which checks who listens). ``https://`` is not
offered: certificates, CA bundles and proxies stay ``requests``' business (:func:`supports`).

It is not thread-safe: each thread owns its own. A connection the server closed while it sat
idle (the keep-alive timeout, a restart) is noticed before a request is written on it (the
socket reads as closed) and replaced. Any other failure closes the connection and raises the
``OSError`` or ``http.client.HTTPException`` as it came; the next call connects afresh.
Retrying is the caller's decision.
"""

from __future__ import annotations

import http.client
import select
import socket
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from globus_compute import local_socket

__all__ = ["KeepAliveConnection", "Reply", "supports"]


def supports(url: str) -> bool:
    """Whether :class:`KeepAliveConnection` can reach ``url`` (``http://`` or ``http+unix://``)."""
    return url.lower().startswith("http://") or local_socket.is_socket_url(url)


@dataclass(frozen=True)
class Reply:
    """One answer: status, headers (case-insensitive lookups) and the whole body."""

    status: int
    headers: Message
    body: bytes


class _UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over the service's Unix socket (``Host: localhost``)."""

    def __init__(self, url: str) -> None:
        super().__init__("localhost")
        self.socket_path = local_socket.socket_path_of(url)

    def connect(self) -> None:
        self.sock = local_socket.connect(self.socket_path, self.timeout)


class _TCPHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over TCP with Nagle off, as urllib3 sets it."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class KeepAliveConnection:
    """One persistent connection to the service at ``base_url``; one per thread.

    Args:
        base_url: ``http://host:port`` or the service's ``http+unix://`` socket URL (a path
            after it is ignored: request paths are absolute).

    Raises:
        ValueError: ``base_url`` is neither (see :func:`supports`).
    """

    def __init__(self, base_url: str) -> None:
        if not supports(base_url):
            raise ValueError(f"a keep-alive connection needs an http:// URL, not {base_url!r}")
        self.base_url = base_url
        self._conn: http.client.HTTPConnection | None = None
        #: The ``Host`` header ``http.client`` would send (``localhost`` on the socket, as
        #: ``local_socket``'s ``requests`` adapter sends it).
        self.host = (
            "localhost" if local_socket.is_socket_url(base_url) else urlsplit(base_url).netloc
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float | None,
    ) -> Reply:
        """Send one request and read its whole answer.

        Args:
            path: Absolute path with any query string, e.g. ``/v2/batch_status?wait=1``.
            headers: Sent as given, in this order, after any of ``Host``, ``Accept-Encoding:
                identity`` and ``Content-Length`` that they leave out (``http.client`` adds
                those first).
            timeout: Seconds allowed for connecting and for each read (None: no limit).

        Raises:
            OSError: The connection could not be made or broke (the connection is closed).
            http.client.HTTPException: The answer was not HTTP (the connection is closed).
        """
        conn = self._connection()
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            reply = Reply(response.status, response.headers, response.read())
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return reply

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            self.close()
            conn = None
        if conn is None:
            if local_socket.is_socket_url(self.base_url):
                conn = _UnixHTTPConnection(self.base_url)
            else:
                parts = urlsplit(self.base_url)
                conn = _TCPHTTPConnection(parts.hostname or "localhost", parts.port)
            self._conn = conn
        return conn


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket was closed by the server: between answers nothing may
    arrive, so a readable socket means EOF (or an error)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
