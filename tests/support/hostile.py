"""Hostile and heavy clients of the service, and the well-behaved second client that watches.

Each stressor is a context manager that runs named threads for as long as the ``with`` block
lasts and stops them (with an ``Event``, joined with a deadline) on exit; every loop is bounded
by count and by time. :class:`SecondClient` is the user next door: while a stressor runs it asks
``GET /v2/version`` and does a one-task submit -> result round trip over and over, recording how
long each took, so a test can say "nobody else waited more than a second".

Everything connects to 127.0.0.1 only; the half-open flood may bind another loopback source
address (127.0.0.0/8 is all loopback on Linux) to look like a second machine.
"""

from __future__ import annotations

import contextlib
import functools
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from globus_compute.serialize import ComputeSerializer, PureSourceTextInspect

SER = ComputeSerializer()
SOURCE = ComputeSerializer(strategy_code=PureSourceTextInspect())
HTTP_TIMEOUT_S = 30.0


def double(x):
    return 2 * x


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def packed_args(*args: Any) -> str:
    """A task payload: the packed (args, kwargs) buffers the reference SDK sends."""
    return SER.pack_buffers([SER.serialize(args), SER.serialize({})])


def register_function(url: str, token: str, fn: Callable[..., Any]) -> str:
    """Register ``fn`` as source text (workers need not import this module); its id."""
    code = SER.pack_buffers([SOURCE.serialize(fn)])
    reply = requests.post(
        f"{url}/v3/functions",
        json={"function_name": fn.__name__, "function_code": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=HTTP_TIMEOUT_S,
    )
    reply.raise_for_status()
    return str(reply.json()["function_uuid"])


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Session:
    """Raw HTTP calls with one identity's token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.http.post(self.url + path, json=body, **kw)

    def submit(self, endpoint_id: str, function_id: str, payloads: list[str]) -> list[str]:
        reply = self.post(f"/v3/endpoints/{endpoint_id}/submit", {"tasks": {function_id: payloads}})
        assert reply.status_code == 200, reply.text[:300]
        return list(reply.json()["tasks"][function_id])

    def wait_terminal(self, task_id: str, deadline_s: float) -> dict[str, Any]:
        """Long-poll one task until it is terminal; AssertionError at the deadline."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            reply = self.post(
                "/v2/batch_status", {"task_ids": [task_id]}, params={"wait": min(5.0, deadline_s)}
            )
            assert reply.status_code == 200, reply.text[:300]
            doc = reply.json()["results"].get(task_id)
            if doc is not None and doc["status"] in ("success", "failed"):
                return dict(doc)
        raise AssertionError(f"task {task_id} not terminal within {deadline_s} s")

    def close(self) -> None:
        self.http.close()


@dataclass
class SecondClient:
    """The well-behaved client next door, timing ``GET /v2/version`` and a one-task round trip.

    Attributes:
        latencies: Seconds each call took, by kind (``"version"``, ``"round trip"``).
        failures: What went wrong, if anything (a status other than 200, an error, a wrong
            result).
    """

    url: str
    token: str
    endpoint_id: str
    function_id: str
    interval_s: float = 0.1
    max_rounds: int = 2000
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"version": [], "round trip": []}
    )
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="second-client")

    def __enter__(self) -> SecondClient:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(2 * HTTP_TIMEOUT_S)

    def worst(self, kind: str) -> float:
        return max(self.latencies[kind], default=float("nan"))

    def _run(self) -> None:
        session = Session(self.url, self.token)
        try:
            for n in range(self.max_rounds):
                if self._stop.is_set():
                    return
                self._timed("version", functools.partial(self._version, session))
                self._timed("round trip", functools.partial(self._round_trip, session, n))
                self._stop.wait(self.interval_s)
        finally:
            session.close()

    def _timed(self, kind: str, call: Callable[[], None]) -> None:
        began = time.monotonic()
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            self.failures.append(f"{kind}: {exc!r}"[:300])
        self.latencies[kind].append(time.monotonic() - began)

    def _version(self, session: Session) -> None:
        reply = session.http.get(
            f"{self.url}/v2/version", params={"service": "all"}, timeout=HTTP_TIMEOUT_S
        )
        assert reply.status_code == 200 and "min_sdk_version" in reply.json(), reply.text[:200]

    def _round_trip(self, session: Session, n: int) -> None:
        (task_id,) = session.submit(self.endpoint_id, self.function_id, [packed_args(n)])
        doc = session.wait_terminal(task_id, HTTP_TIMEOUT_S)
        assert doc["status"] == "success", doc
        assert SER.deserialize(doc["result"]) == 2 * n, doc


class _Stressor:
    """Named threads running ``_work(stop)`` until the ``with`` block ends."""

    name = "stressor"
    threads = 1

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, args=(self._stop,), name=f"{self.name}-{i}")
            for i in range(self.threads)
        ]
        self.errors: list[str] = []

    def __enter__(self) -> _Stressor:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(2 * HTTP_TIMEOUT_S)

    def _work(self, stop: threading.Event) -> None:
        raise NotImplementedError


class HugeAnswers(_Stressor):
    """Ask, again and again, for every one of a set of tasks with huge results."""

    name = "huge-answers"
    threads = 2

    def __init__(self, url: str, token: str, task_ids: list[str], max_rounds: int = 500) -> None:
        self.url, self.token, self.task_ids, self.max_rounds = url, token, task_ids, max_rounds
        self.answers = 0
        super().__init__()

    def _work(self, stop: threading.Event) -> None:
        session = Session(self.url, self.token)
        try:
            for n in range(self.max_rounds):
                if stop.is_set():
                    return
                try:
                    if n % 2:
                        reply = session.post("/v2/batch_status", {"task_ids": self.task_ids})
                    else:
                        tid = self.task_ids[n % len(self.task_ids)]
                        reply = session.http.get(f"{self.url}/v2/tasks/{tid}", timeout=60)
                    self.answers += reply.status_code == 200
                except requests.RequestException as exc:
                    self.errors.append(repr(exc)[:200])
        finally:
            session.close()


class SlowBodies(_Stressor):
    """Connections that send most of a big declared body, then stall until the end.

    Half of them carry no token, the other half a valid one (``token``); all post to an agent
    route, whose body limit is the largest.
    """

    name = "slow-bodies"

    def __init__(
        self,
        url: str,
        token: str,
        path: str,
        connections: int = 20,
        declared: int = 30_000_000,
        sent: int = 29_000_000,
    ) -> None:
        self.address = host_port(url)
        self.token, self.path = token, path
        self.connections, self.declared, self.sent = connections, declared, sent
        self.refused = 0
        self.sockets: list[socket.socket] = []
        super().__init__()

    def _head(self, with_token: bool) -> bytes:
        auth = f"Authorization: Bearer {self.token}\r\n" if with_token else ""
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {self.declared}\r\n\r\n"
        ).encode()

    def _work(self, stop: threading.Event) -> None:
        chunk = b"x" * 65536
        pending: dict[socket.socket, int] = {}
        for i in range(self.connections):
            try:
                sock = socket.create_connection(self.address, timeout=5)
                sock.sendall(self._head(with_token=bool(i % 2)))
            except OSError as exc:
                self.errors.append(repr(exc)[:200])
                continue
            sock.setblocking(False)
            self.sockets.append(sock)
            pending[sock] = self.sent
        # Feed every connection as fast as the service reads, until each sent its share.
        deadline = time.monotonic() + 60
        while pending and not stop.is_set() and time.monotonic() < deadline:
            progressed = False
            for sock, left in list(pending.items()):
                try:
                    n = sock.send(chunk[: min(len(chunk), left)])
                except BlockingIOError:
                    continue
                except OSError:
                    self.refused += 1  # the service answered and closed: nothing more to send
                    del pending[sock]
                    continue
                progressed = True
                if left - n <= 0:
                    del pending[sock]
                else:
                    pending[sock] = left - n
            if not progressed:
                stop.wait(0.01)
        stop.wait(120)  # stall: hold every connection open until the block ends

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


class HalfOpenFlood(_Stressor):
    """Hold ``connections`` connections that never finish their request headers.

    Each one sends the start of a request head and stalls; whenever the service closes one, it
    is opened again (at most ``max_reopens`` times in all).
    """

    name = "half-open"

    def __init__(
        self,
        url: str,
        connections: int = 1100,
        source: str | None = None,
        max_reopens: int = 200_000,
    ) -> None:
        self.address = host_port(url)
        self.connections, self.source, self.max_reopens = connections, source, max_reopens
        self.opened = self.closed_by_service = self.connect_failures = 0
        super().__init__()

    def _open(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            if self.source:
                sock.bind((self.source, 0))
            sock.connect(self.address)
            sock.sendall(b"POST /v2/batch_status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            self.connect_failures += 1
            sock.close()
            return None
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _work(self, stop: threading.Event) -> None:
        with selectors.DefaultSelector() as selector:
            for _ in range(self.connections):
                if stop.is_set():
                    break
                if (sock := self._open()) is not None:
                    selector.register(sock, selectors.EVENT_READ)
            reopens = 0
            while not stop.is_set() and reopens < self.max_reopens:
                ready = selector.select(timeout=0.2)
                missing = self.connections - len(selector.get_map())
                for key, _ in ready:
                    # Readable means the service answered (a refusal) or closed it.
                    selector.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    self.closed_by_service += 1
                    missing += 1
                for _ in range(min(missing, 200)):
                    if (sock := self._open()) is not None:
                        selector.register(sock, selectors.EVENT_READ)
                    reopens += 1
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]


def fake_endpoint_id() -> str:
    """An endpoint id no agent serves: tasks queued there stay put."""
    return str(uuid.uuid4())
