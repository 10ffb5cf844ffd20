"""Run the service under uvicorn on a socket bound here (so port 0 works and is reported).

Every connection is served by ``connections.GuardedH11Protocol`` (read deadlines, a bound on
connections in all and per client address); the open-file limit is raised to its hard limit so
that bound can be generous, and uvicorn leaves logging to the process (``logs.py``), so its
records are bounded like every other.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from globus_compute import local_socket
from globus_compute import state_dir as state_dir_mod
from globus_compute.service.app import create_app
from globus_compute.service.config import ServiceConfig
from globus_compute.service.connections import ConnectionGuard, ConnectionLimits, GuardedH11Protocol
from globus_compute.service.store import Store

log = logging.getLogger(__name__)

#: Long polls in flight at shutdown are released at once (the notifier closes), so a short
#: grace period suffices.
GRACEFUL_SHUTDOWN_S = 3

#: Listen backlog; also how many connections asyncio accepts in one go before any of them is
#: looked at, so the connection guard keeps twice this many files (plus some) in reserve.
ACCEPT_BACKLOG = 128


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


class _Server(uvicorn.Server):
    """uvicorn server that reports when it is accepting connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop on SIGINT/SIGTERM and exit normally, without re-raising the signal afterwards
        (uvicorn re-raises it, which turns a clean shutdown into a death by signal)."""
        with super().capture_signals():
            try:
                yield
            finally:
                captured = getattr(self, "_captured_signals", None)
                if captured:
                    log.info("Stopping on signal(s) %s", captured)
                    captured.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        if ctx is not None:
            ctx.notifier.close()
        await super().shutdown(sockets=sockets)


def _remove_socket_file(path: Path, inode: int) -> None:
    """Remove our socket file, unless a newer service replaced it meanwhile."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:
            path.unlink()


def serve(
    config: ServiceConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_callback: Callable[[str], None] | None = None,
    store: Store | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, on ``host:port`` and on the state dir's Unix socket.

    The socket (``state_dir.socket_path``) is how the owner's own clients reach this service
    without trusting a TCP port (see ``local_socket.py``); it is removed when serving ends.

    Args:
        config: Service settings.
        host: Interface to bind; loopback unless told otherwise.
        port: TCP port; 0 picks a free one.
        ready_callback: Called with the base URL once connections are accepted.
        store: Storage to use (default: the database in ``config.state_dir``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio disables Nagle only on sockets whose proto says TCP, and
    # with Nagle on, keep-alive requests stall ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{url_host}:{bound_port}"
    app = create_app(config, store)  # creates the private state dir the socket goes in
    unix_path = state_dir_mod.socket_path(config.state_dir)
    try:
        unix_sock = local_socket.bind(unix_path)
    except BaseException:
        sock.close()
        app.state.ctx.store.close()
        raise
    unix_inode = os.stat(unix_path).st_ino
    files = raise_file_limit()
    guard = ConnectionGuard(
        ConnectionLimits(
            max_connections=config.max_connections,
            max_client_connections=config.max_client_connections,
            header_timeout_s=config.header_timeout_s,
            body_timeout_s=config.body_timeout_s,
            reserved_files=2 * ACCEPT_BACKLOG + 64,
        )
    )
    log.info("Serving at most %d connections (open-file limit %d)", guard.capacity(), files)
    uv_config = uvicorn.Config(
        app,
        http=functools.partial(GuardedH11Protocol, guard=guard),  # type: ignore[arg-type]
        backlog=ACCEPT_BACKLOG,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    server = _Server(uv_config, (lambda: ready_callback(url)) if ready_callback else None)
    try:
        server.run(sockets=[sock, unix_sock])
    finally:
        sock.close()
        unix_sock.close()
        _remove_socket_file(unix_path, unix_inode)
        app.state.ctx.store.close()
    log.info("Service at %s stopped", url)
