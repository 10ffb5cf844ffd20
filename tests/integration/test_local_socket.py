"""The Unix-socket URL form and the socket helpers (``globus_compute.local_socket``)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import requests

from globus_compute import local_socket
from globus_compute.errors import UnsafeStateDir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_url_round_trip_and_recognition():
    url = local_socket.socket_url("/home/me/.globus_compute/local/service.sock")
    assert url == "http+unix://%2Fhome%2Fme%2F.globus_compute%2Flocal%2Fservice.sock"
    assert local_socket.is_socket_url(url) and not local_socket.is_socket_url("http://h:1")
    assert local_socket.socket_path_of(url + "/v2/version") == Path(
        "/home/me/.globus_compute/local/service.sock"
    )
    with pytest.raises(ValueError):
        local_socket.socket_path_of("http://localhost:5000")


def _serve_once(sock, reply: bytes) -> threading.Thread:
    def answer() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, name="test-socket-server")
    thread.start()
    return thread


@pytest.mark.parametrize("depth", [1, 12])  # 12 nested dirs: a path too long for sun_path
def test_requests_reach_a_socket_even_at_a_long_path(tmp_path: Path, depth: int):
    directory = tmp_path.joinpath(*(["a-fairly-long-directory-name"] * depth))
    directory.mkdir(parents=True)
    path = directory / "service.sock"
    sock = local_socket.bind(path)
    sock.listen(1)
    assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.lstat().st_mode) == 0o600
    body = b'{"ok": true}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
        len(body), body)  # fmt: skip
    server = _serve_once(sock, reply)
    session = requests.Session()
    local_socket.mount(session)
    try:
        answer = session.get(local_socket.socket_url(path) + "/v2/version", timeout=10)
    finally:
        server.join(10)
        sock.close()
        session.close()
    assert answer.json() == {"ok": True}
    assert len(os.fsencode(path)) > 100 or depth == 1


def test_bind_replaces_a_stale_socket_but_nothing_else(tmp_path: Path):
    path = tmp_path / "service.sock"
    local_socket.bind(path).close()  # a previous service's, no longer listening
    local_socket.bind(path).close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(UnsafeStateDir, match="not a socket"):
        local_socket.bind(path)


def test_a_socket_session_ignores_proxies_and_netrc_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A proxy named in the environment would swallow the request if the session consulted it;
    # a .netrc entry would add an Authorization header to a request that carries none.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    path = tmp_path / "service.sock"
    sock = local_socket.bind(path)
    sock.listen(1)
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = sock.accept()
        with conn:
            seen.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    server = threading.Thread(target=answer, name="test-socket-server")
    server.start()
    session = requests.Session()
    local_socket.mount(session)
    try:
        reply = session.get(local_socket.socket_url(path) + "/v2/version", timeout=10)
    finally:
        server.join(10)
        sock.close()
        session.close()
    assert reply.json() == {}
    assert not session.trust_env
    assert seen and b"authorization" not in seen[0].lower()
