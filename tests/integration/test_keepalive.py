"""``globus_compute.keepalive``: one reused connection, replaced when the server closed it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from globus_compute import keepalive, local_socket

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY), BODY)  # fmt: skip


class _Server:
    """Answers ``requests_per_connection`` requests per connection, then closes it."""

    def __init__(self, sock: socket.socket, requests_per_connection: int) -> None:
        self.sock = sock
        self.per_connection = requests_per_connection
        self.accepted = 0
        self.heads: list[bytes] = []
        sock.listen(4)
        sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve, name="test-keepalive-server")
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.accepted += 1
                with conn:
                    conn.settimeout(10)
                    for _ in range(self.per_connection):
                        data = b""
                        while b"\r\n\r\n" not in data:
                            chunk = conn.recv(65536)
                            if not chunk:
                                return
                            data += chunk
                        head, _, rest = data.partition(b"\r\n\r\n")
                        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                        while len(rest) < length:
                            rest += conn.recv(65536)
                        self.heads.append(head)
                        conn.sendall(ANSWER)
        except OSError:
            return  # the listening socket was closed: the test is over

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(10)


def _tcp_server(per_connection: int) -> tuple[_Server, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return _Server(sock, per_connection), f"http://127.0.0.1:{sock.getsockname()[1]}"


def _unix_server(tmp_path: Path, per_connection: int) -> tuple[_Server, str]:
    path = tmp_path / "service.sock"
    return _Server(local_socket.bind(path), per_connection), local_socket.socket_url(path)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_calls_share_one_connection(tmp_path: Path, kind: str):
    server, url = _tcp_server(3) if kind == "tcp" else _unix_server(tmp_path, 3)
    conn = keepalive.KeepAliveConnection(url)
    try:
        replies = [
            conn.request("POST", "/v2/batch_status", b"{}", {"X-Test": str(i)}, 10)
            for i in range(3)
        ]
    finally:
        conn.close()
        server.stop()
    assert [r.status for r in replies] == [200, 200, 200]
    assert all(r.body == BODY and r.headers["content-type"] == "application/json" for r in replies)
    assert server.accepted == 1
    assert [h.split(b"\r\n")[0] for h in server.heads] == [b"POST /v2/batch_status HTTP/1.1"] * 3


def test_a_connection_the_server_closed_is_replaced_before_the_next_call(tmp_path: Path):
    server, url = _unix_server(tmp_path, 1)  # the server closes after every answer
    conn = keepalive.KeepAliveConnection(url)
    try:
        first = conn.request("POST", "/a", b"{}", {}, 10)
        # Wait (bounded) until the server's close is visible, as an idle keep-alive timeout is.
        for _ in range(200):
            if conn._conn is None or keepalive._closed_by_peer(conn._conn.sock):
                break
            threading.Event().wait(0.01)
        second = conn.request("POST", "/b", b"{}", {}, 10)
    finally:
        conn.close()
        server.stop()
    assert (first.status, second.status) == (200, 200)
    assert server.accepted == 2


def test_only_http_and_the_socket_are_supported():
    assert keepalive.supports("http://127.0.0.1:5000")
    assert keepalive.supports(local_socket.socket_url("/tmp/x.sock"))
    assert not keepalive.supports("https://compute.api.globus.org")
    with pytest.raises(ValueError, match="http://"):
        keepalive.KeepAliveConnection("https://compute.api.globus.org")
