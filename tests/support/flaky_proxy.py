"""A small, bounded TCP proxy on loopback that resets some HTTP requests and delays the rest.

Why per request rather than per connection: ``requests`` keeps connections alive, so one
connection carries many requests; rolling the dice on every request start (a client chunk that
begins with an HTTP method) makes the fault rate a property of requests, whatever the pooling.

Each request gets one fate:

* ``reset_before`` (``p_reset_before``): the connection is reset (RST) before the request
  reaches the service. The service never saw it; a retry is harmless.
* ``reset_after`` (``p_reset_after``): the request is forwarded, the proxy waits for the first
  bytes of the service's answer, then resets the client's connection instead of relaying them.
  The service did the work, the client never learns it: a retried submit may create its tasks
  a second time. This is the interesting case.
* otherwise it passes through, each relayed chunk delayed by up to ``max_delay_s``.

The proxy listens on 127.0.0.1 only, runs daemon-free named threads that all end when
``stop()`` is called (or after ``lifetime_s``, whichever is first), and caps live connections.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ")


@dataclass
class ProxyStats:
    """What the proxy did, for the test's report."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, which sends RST: the peer sees ``ConnectionResetError``."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FlakyProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` with injected resets and delays.

    Args:
        upstream_port: The service's loopback port.
        p_reset_before: Share of requests reset before reaching the service.
        p_reset_after: Share of requests reset after the service answered.
        max_delay_s: Upper bound of the random delay added to each relayed chunk.
        seed: Seed of the proxy's own random generator (reproducible fault pattern).
        lifetime_s: The proxy stops by itself after this long, even if the test forgets.
        max_connections: Connections accepted beyond this many live ones are reset.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        p_reset_before: float = 0.1,
        p_reset_after: float = 0.1,
        max_delay_s: float = 0.01,
        seed: int = 7,
        lifetime_s: float = 300.0,
        max_connections: int = 64,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.p_reset_before = p_reset_before
        self.p_reset_after = p_reset_after
        self.max_delay_s = max_delay_s
        self.lifetime_s = lifetime_s
        self.max_connections = max_connections
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._live = threading.BoundedSemaphore(max_connections)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="flaky-proxy-accept")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FlakyProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, end every relay, join every thread."""
        self._stop.set()
        if self._acceptor.ident is not None:
            self._acceptor.join(5)
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        self._listener.close()

    # -- internals ---------------------------------------------------------------------------

    def _random(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + self.lifetime_s
        while not self._stop.is_set():
            if time.monotonic() > deadline:
                self._stop.set()
                break
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if not self._live.acquire(blocking=False):
                self.stats.add("refused")
                _reset(client)
                continue
            self.stats.add("connections")
            thread = threading.Thread(
                target=self._relay, args=(client,), name=f"flaky-proxy-{self.port}-conn"
            )
            with self._threads_lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        """Relay one connection until either side closes, a fault fires, or the proxy stops."""
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            pending_reset_after = False
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                if client in readable:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    if chunk.startswith(_METHODS):
                        roll = self._random()
                        if roll < self.p_reset_before:
                            self.stats.add("reset_before")
                            _reset(client)
                            return
                        if roll < self.p_reset_before + self.p_reset_after:
                            pending_reset_after = True
                        else:
                            self.stats.add("passed")
                    self._delay()
                    upstream.sendall(chunk)
                if upstream in readable:
                    answer = upstream.recv(65536)
                    if not answer:
                        break
                    if pending_reset_after:
                        self.stats.add("reset_after")
                        _reset(client)
                        return
                    self._delay()
                    client.sendall(answer)
        except OSError:
            self.stats.add("relay_error")
        finally:
            if upstream is not None:
                upstream.close()
            try:
                client.close()
            except OSError:
                pass
            self._live.release()

    def _delay(self) -> None:
        if self.max_delay_s > 0:
            self._stop.wait(self._random() * self.max_delay_s)
