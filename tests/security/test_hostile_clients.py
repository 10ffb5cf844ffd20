"""Hostile clients at the connection and body level (issue 16 items 1-2, issue 15 item 6).

Why: the service held connections that never finished their request head for ever, buffered
whole bodies (29 MB each) before it knew who was sending them, and keyed its rate limit by the
raw ``Authorization`` header, so 60 spellings of ``Bearer`` bought 60 buckets and made-up tokens
were never throttled. Each test here is what such a client does, over real sockets, against a
real service on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.config import ServiceConfig
from globus_compute.service.limits import BUDGET_WAIT_S
from tests.support.hostile import fake_endpoint_id, host_port
from tests.support.service import RunningService, create_identities

pytestmark = pytest.mark.integration

#: The agent route accepts the largest bodies (three times the 10 MiB request limit).
BIG_BODY = 30_000_000


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the service sends until it closes the connection (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    data = b""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _read_head(sock: socket.socket, timeout: float) -> bytes:
    """The status line and headers of the first answer, or what came before the timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data and (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _closed(sock: socket.socket) -> bool:
    """Whether the service closed (or answered and closed) this connection."""
    sock.setblocking(False)
    try:
        sock.recv(65536)  # b"" once closed, or the refusal that came before
    except BlockingIOError:
        return False
    except OSError:
        pass
    finally:
        sock.setblocking(True)
    return True


def _connect(svc: RunningService, source: str | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    if source is not None:
        sock.bind((source, 0))
    sock.connect(host_port(svc.url))
    return sock


def _big_post_head(path: str, token: str | None, length: int = BIG_BODY) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


# -- item 1: connections ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_request_head_that_never_completes_is_closed(service: RunningService) -> None:
    """A half-open request gets 408 and is closed, an idle connection is closed, in time.

    Fails on the old service: neither connection was ever closed.
    """
    limit = ServiceConfig().header_timeout_s
    with _connect(service) as partial, _connect(service) as silent:
        partial.sendall(b"GET /v2/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        began = time.monotonic()
        answer = _read_until_closed(partial, limit + 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"REQUEST_TIMEOUT"' in answer
        assert _read_until_closed(silent, 5) == b""  # closed, silently
        assert time.monotonic() - began < limit + 5
    service.assert_healthy()


@pytest.mark.timeout(60)
def test_one_client_address_cannot_hold_every_connection(
    service_factory: Callable[..., RunningService],
) -> None:
    """A flood from one address keeps at most its share; newcomers make room by evicting it.

    127.0.0.2 plays another machine (all of 127.0.0.0/8 is loopback on Linux). Fails on the old
    service: every one of the flood's connections stayed open.
    """
    svc = service_factory("--max-client-connections", "20", "--max-connections", "40")
    flood = [_connect(svc, source="127.0.0.2") for _ in range(60)]
    try:
        for sock in flood:
            sock.sendall(b"GET /v2/version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # The flood's own newcomers evict its oldest half-open connections...
        deadline = time.monotonic() + 10
        while sum(not _closed(s) for s in flood) > 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(not _closed(s) for s in flood) <= 20
        # ...and whole requests, from the same address or another, are still served.
        for source in ("127.0.0.2", "127.0.0.1"):
            with _connect(svc, source=source) as sock:
                sock.sendall(b"GET /v2/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert _read_head(sock, 10).startswith(b"HTTP/1.1 200"), source
    finally:
        for sock in flood:
            sock.close()
    svc.assert_healthy()


# -- item 2: bodies -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_a_body_without_a_valid_token_is_refused_before_it_is_read(
    service: RunningService, token: str | None
) -> None:
    """401 comes back while the 30 MB body is still unsent: nothing of it is buffered.

    Fails on the old service: it waited for the whole body before looking at the token.
    """
    path = f"{AGENT_PREFIX}/{fake_endpoint_id()}/results"
    with _connect(service) as sock:
        sock.sendall(_big_post_head(path, token) + b'{"results": [')
        answer = _read_head(sock, 10)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"www-authenticate: bearer" in answer.lower()
    service.assert_healthy()


@pytest.mark.timeout(60)
def test_a_slow_body_is_refused_when_its_time_is_up(
    service_factory: Callable[..., RunningService],
) -> None:
    """An authenticated body that stalls gets 408 and its connection is closed.

    Fails on the old service (which had no ``--body-timeout-s``, and no body timeout at all).
    """
    svc = service_factory("--body-timeout-s", "1")
    path = f"{AGENT_PREFIX}/{fake_endpoint_id()}/results"
    with _connect(svc) as sock:
        sock.sendall(_big_post_head(path, svc.token, length=1000) + b'{"results": [')
        began = time.monotonic()
        answer = _read_until_closed(sock, 15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"REQUEST_TIMEOUT"' in answer
    assert time.monotonic() - began < 6
    svc.assert_healthy()


@pytest.mark.timeout(60)
def test_one_identity_cannot_have_more_than_its_share_of_bodies_in_flight(
    service: RunningService,
) -> None:
    """Two stalled 30 MB bodies fill one identity's share; its third waits, then gets 503.

    Another identity's requests go through meanwhile. Fails on the old service: every body was
    accepted (and buffered) whoever sent it.
    """
    bob = create_identities(service).bob
    path = f"{AGENT_PREFIX}/{fake_endpoint_id()}/results"
    held = [_connect(service) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(_big_post_head(path, service.token) + b'{"results": [')
        with _connect(service) as third:
            third.sendall(_big_post_head(path, service.token) + b'{"results": [')
            began = time.monotonic()
            answer = _read_head(third, BUDGET_WAIT_S + 10)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after" in answer.lower()
        assert BUDGET_WAIT_S - 1 < time.monotonic() - began < BUDGET_WAIT_S + 5
        other = requests.get(
            f"{service.url}/v2/endpoints", headers={"Authorization": f"Bearer {bob}"}, timeout=10
        )
        assert other.status_code == 200, other.text
    finally:
        for sock in held:
            sock.close()
    service.assert_healthy()


# -- issue 15 item 6: the rate limit ------------------------------------------------------------


def _spellings(n: int) -> list[str]:
    """``n`` different letter cases of "Bearer"."""
    return [
        "".join(c.upper() if (i >> k) & 1 else c for k, c in enumerate("bearer")) for i in range(n)
    ]


@pytest.mark.timeout(60)
def test_rate_limit_is_per_identity_whatever_the_header_spelling(
    service_factory: Callable[..., RunningService],
) -> None:
    """60 requests in 60 spellings of ``Bearer`` share one bucket (burst 10 at 1 request/s).

    Fails on the old service: keyed by the raw header, 59 of them were answered 200.
    """
    svc = service_factory("--rate-limit", "1")
    began = time.monotonic()
    codes = []
    with requests.Session() as http:
        for scheme in _spellings(60):
            reply = http.get(
                f"{svc.url}/v2/endpoints",
                headers={"Authorization": f"{scheme} {svc.token}"},
                timeout=10,
            )
            codes.append(reply.status_code)
    allowed = 10 + int(time.monotonic() - began) + 1
    assert set(codes) <= {200, 429}
    assert codes.count(200) <= allowed, codes


@pytest.mark.timeout(60)
def test_failed_authentication_is_throttled_by_client_address(
    service_factory: Callable[..., RunningService],
) -> None:
    """Made-up tokens are throttled like everything else from their address.

    Fails on the old service: each bogus token had a bucket of its own, so none was ever 429.
    """
    svc = service_factory("--rate-limit", "1")
    with requests.Session() as http:
        codes = [
            http.get(
                f"{svc.url}/v2/endpoints",
                headers={"Authorization": f"Bearer made-up-{i}"},
                timeout=10,
            ).status_code
            for i in range(40)
        ]
        assert set(codes) <= {401, 429}
        assert codes.count(429) >= 20, codes
        retry = http.get(
            f"{svc.url}/v2/endpoints", headers={"Authorization": "Bearer made-up"}, timeout=10
        )
    assert retry.status_code == 429 and int(retry.headers["Retry-After"]) >= 1
