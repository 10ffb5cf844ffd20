"""The Client's hot path (``client/hot_path.py``) puts globus-sdk's bytes on the wire.

A raw server on a Unix socket records every request; the same calls are made once on the hot
path and once through globus-sdk (the hot path switched off on the same Client), and the
recorded requests must be byte-identical. Then what the hot path does with answers other than
2xx: errors as globus-sdk raises them, resends through globus-sdk where it would retry.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import globus_sdk
import pytest

from globus_compute import local_socket
from globus_compute.client import Client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EP = "11111111-1111-1111-1111-111111111111"
FN = "22222222-2222-2222-2222-222222222222"
TASK = "44444444-4444-4444-4444-444444444444"
SUBMITTED = (
    b'{"request_id": "r", "task_group_id": "55555555-5555-5555-5555-555555555555", '
    b'"endpoint_id": "%s", "tasks": {"%s": ["%s"]}}' % (EP.encode(), FN.encode(), TASK.encode())
)
STATUS = b'{"response": "batch", "results": {"%s": {"task_id": "%s", "status": "running"}}}' % (
    TASK.encode(), TASK.encode())  # fmt: skip


def _answer(status: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status.encode(), len(body), extra, body)  # fmt: skip


class _Recorder:
    """Answers each request with the next canned answer and keeps the raw request bytes."""

    def __init__(self, path: Path) -> None:
        self.sock = local_socket.bind(path)
        self.sock.listen(8)
        self.answers: list[bytes] = []
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, name="test-recorder")
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                threading.Thread(target=self._connection, args=(conn,), daemon=True).start()
        except OSError:
            return

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(20)
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                data = rest[length:]
                conn.sendall(self.answers.pop(0))

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def recorder(tmp_path: Path):
    rec = _Recorder(tmp_path / "service.sock")
    yield rec
    rec.stop()


def _client(recorder: _Recorder) -> Client:
    url = local_socket.socket_url(recorder.sock.getsockname())
    return Client(
        base_url=url,
        authorizer=globus_sdk.AccessTokenAuthorizer("the-token"),
        do_version_check=False,
        request_budget=None,
    )


def _calls(client: Client) -> None:
    batch = client.create_batch(resource_specification={"num_nodes": 2})
    batch.add(FN, args=[1, "two"], kwargs={"y": 3})
    client.batch_run(EP, batch)
    client.get_task_outcomes([TASK])
    client.get_task_outcomes([TASK], wait=0.5)


def test_hot_requests_are_byte_identical_to_globus_sdks(recorder: _Recorder):
    client = _client(recorder)
    assert client._hot_v2 is not None and client._hot_v3 is not None
    recorder.answers = [_answer("200 OK", SUBMITTED), *[_answer("200 OK", STATUS)] * 2] * 2
    try:
        _calls(client)
        hot = list(recorder.requests)
        client._hot_v2 = client._hot_v3 = None  # the same calls through globus-sdk
        _calls(client)
        sdk = recorder.requests[len(hot) :]
    finally:
        client.close()
    assert len(hot) == len(sdk) == 3
    # Nothing in these requests is random: every byte must match, headers in the same order.
    assert hot == sdk
    assert hot[0].startswith(f"POST /v3/endpoints/{EP}/submit HTTP/1.1\r\n".encode())
    assert hot[2].startswith(b"POST /v2/batch_status?wait=0.5 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer the-token\r\n" in hot[1]


def test_a_refusal_raises_globus_sdks_error(recorder: _Recorder):
    client = _client(recorder)
    body = b'{"code": "BAD_REQUEST", "message": "no", "request_id": "r"}'
    recorder.answers = [_answer("400 Bad Request", body)]
    try:
        with pytest.raises(globus_sdk.GlobusAPIError) as caught:
            client.get_task_outcomes([TASK])
    finally:
        client.close()
    assert caught.value.http_status == 400
    assert (caught.value.code, caught.value.message) == ("BAD_REQUEST", "no")
    assert len(recorder.requests) == 1


def test_a_429_is_waited_out_and_sent_again(recorder: _Recorder):
    client = _client(recorder)
    body = b'{"code": "TOO_MANY_REQUESTS", "message": "slow down", "request_id": "r"}'
    recorder.answers = [_answer("429 Too Many Requests", body, b"Retry-After: 0\r\n")]
    recorder.answers.append(_answer("200 OK", STATUS))
    try:
        outcomes = client.get_task_outcomes([TASK])
    finally:
        client.close()
    assert TASK in outcomes and len(recorder.requests) == 2
    assert recorder.requests[0] == recorder.requests[1]


def test_a_transient_answer_is_resent_through_globus_sdk(recorder: _Recorder):
    client = _client(recorder)
    recorder.answers = [_answer("503 Service Unavailable", b"{}"), _answer("200 OK", STATUS)]
    try:
        outcomes = client.get_task_outcomes([TASK])
    finally:
        client.close()
    assert TASK in outcomes and len(recorder.requests) == 2
    assert recorder.requests[0] == recorder.requests[1]
