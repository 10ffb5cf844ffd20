"""A TCP proxy on 127.0.0.1 that adds network latency to every HTTP request and counts them.

The hosted Compute service is tens of milliseconds away; the embedded one is microseconds away.
Put this in front of the embedded service and each request is held ``min_delay_s`` to
``max_delay_s`` (uniform) before it is forwarded, so a benchmark pays a realistic round trip
per request. It also reads the first line of every request and answer it relays, so it can say
what the client spent its requests on (``kind_of``) and how many answers were 429s, without
trusting the client's own account.

One relay thread per connection (``requests`` keeps connections alive, so there are few). A
request starts with a chunk that begins with an HTTP method; a response with ``HTTP/1.``.
Listens on 127.0.0.1 only; ``stop()`` ends and joins every thread.
"""

from __future__ import annotations

import random
import re
import select
import socket
import threading
from collections import Counter

__all__ = ["LatencyProxy", "kind_of"]

_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|DELETE|PATCH|HEAD) (\S+)")
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})")


def kind_of(method: str, path: str) -> str:
    """What a request is for: ``submit``, ``poll``, ``register``, ``version`` or ``other``."""
    path = path.split("?", 1)[0]
    if method == "POST" and path.startswith("/v3/endpoints/") and path.endswith("/submit"):
        return "submit"
    if path == "/v2/batch_status":
        return "poll"
    if path.startswith("/v3/functions") or path.startswith("/v2/functions"):
        return "register"
    if path == "/v2/version":
        return "version"
    return "other"


class LatencyProxy:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``, adding latency per request.

    Args:
        upstream_port: The service's port.
        min_delay_s: Shortest delay added to a request.
        max_delay_s: Longest delay added to a request.
        seed: Seed of the delays (reproducible runs).
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        min_delay_s: float = 0.03,
        max_delay_s: float = 0.08,
        seed: int = 12,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.min_delay_s = min_delay_s
        self.max_delay_s = max_delay_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="latency-proxy-accept")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LatencyProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._acceptor.ident is not None:
            self._acceptor.join(5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        self._listener.close()

    def counts(self) -> tuple[Counter[str], Counter[int]]:
        """Requests relayed so far by kind, and answers by HTTP status."""
        with self._lock:
            return Counter(self._requests), Counter(self._statuses)

    # -- internals ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            thread = threading.Thread(target=self._relay, args=(client,), name="latency-proxy")
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                if client in readable:
                    chunk = client.recv(1 << 16)
                    if not chunk:
                        break
                    request = _REQUEST_LINE.match(chunk)
                    if request is not None:
                        self._note_request(request.group(1).decode(), request.group(2).decode())
                        self._stop.wait(self._delay())
                    upstream.sendall(chunk)
                if upstream in readable:
                    answer = upstream.recv(1 << 16)
                    if not answer:
                        break
                    status = _STATUS_LINE.match(answer)
                    if status is not None:
                        with self._lock:
                            self._statuses[int(status.group(1))] += 1
                    client.sendall(answer)
        except OSError:
            pass
        finally:
            if upstream is not None:
                upstream.close()
            client.close()

    def _note_request(self, method: str, path: str) -> None:
        with self._lock:
            self._requests[kind_of(method, path)] += 1

    def _delay(self) -> float:
        with self._lock:
            return self._rng.uniform(self.min_delay_s, self.max_delay_s)
