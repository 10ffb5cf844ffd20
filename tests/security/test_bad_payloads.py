"""Malformed task payloads and malformed HTTP bodies hurt only themselves.

Why: the service stores payloads verbatim and never unpickles them, so a corrupt payload is
accepted and only the endpoint can find out. It must fail THAT task with a text saying what is
wrong, while the tasks submitted beside it in the same request still run. At the HTTP level, a
body cut short by a client that hangs up must not be acted upon, and a body over the 10 MB
request limit gets the reference 413 ``TASK_PAYLOAD_TOO_LARGE``; neither may hurt the service.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from globus_compute.local import LocalCompute
from globus_compute.serialize import ComputeSerializer, PureSourceTextInspect
from globus_compute.service.config import MAX_REQUEST_BYTES
from globus_compute.service.store import Store
from tests.support.service import RunningService

pytestmark = pytest.mark.integration

SER = ComputeSerializer()
SOURCE = ComputeSerializer(strategy_code=PureSourceTextInspect())
DEADLINE_S = 60.0


def double(x):
    return x * 2


def _good(x: int) -> str:
    return SER.pack_buffers([SER.serialize((x,)), SER.serialize({})])


def _wait_terminal(url: str, headers: dict[str, str], task_ids: list[str]) -> dict[str, dict]:
    """Long-poll batch_status (``?wait=``) until every task is terminal, or fail at a deadline."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + DEADLINE_S
    while len(done) < len(task_ids):
        assert time.monotonic() < deadline, f"only {len(done)} of {len(task_ids)} finished"
        pending = [t for t in task_ids if t not in done]
        reply = requests.post(
            f"{url}/v2/batch_status",
            params={"wait": 5},
            json={"task_ids": pending},
            headers=headers,
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        for tid, doc in reply.json()["results"].items():
            if doc["status"] in ("success", "failed"):
                done[tid] = doc
    return done


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalCompute]:
    with LocalCompute(workers=2) as local:
        yield local


#: name -> (payload, a phrase the failure text must contain)
MALFORMED: dict[str, tuple[str, str]] = {
    "bad header": (SER.pack_buffers(["zz\nnot a strategy", SER.serialize({})]), "Invalid header"),
    "truncated packed buffer": (_good(7)[:-6], "Truncated buffer"),
    "bad length line": ("12x\n00\nabc", "Invalid length delimiter"),
    "garbage base64": (
        SER.pack_buffers(["00\n!!!%%%not*base64\n", SER.serialize({})]),
        "binascii.Error",
    ),
    "base64 of non-pickle bytes": (
        SER.pack_buffers(
            ["00\n" + base64.encodebytes(b"\x80\x05garbage").decode(), SER.serialize({})]
        ),
        "UnpicklingError",
    ),
    "one buffer instead of two": (
        SER.pack_buffers([SER.serialize((1,))]),
        "expected 3 packed buffers",
    ),
    "three buffers instead of two": (
        SER.pack_buffers([SER.serialize((1,)), SER.serialize({}), SER.serialize({})]),
        "expected 3 packed buffers",
    ),
    "args not a tuple": (
        SER.pack_buffers([SER.serialize(5), SER.serialize({})]),
        "args must be a tuple",
    ),
    "empty payload": ("", "expected 3 packed buffers"),
}


@pytest.mark.timeout(120)
def test_malformed_payloads_fail_only_their_own_task(stack: LocalCompute) -> None:
    """One submit mixing good and malformed payloads: each bad one fails alone, clearly."""
    assert stack.base_url and stack.token
    headers = {"Authorization": f"Bearer {stack.token}"}
    fid = requests.post(
        f"{stack.base_url}/v3/functions",
        json={
            "function_name": "double",
            "function_code": SER.pack_buffers([SOURCE.serialize(double)]),
        },
        headers=headers,
        timeout=30,
    ).json()["function_uuid"]
    names = ["good 3", *MALFORMED, "good 4"]
    payloads = [_good(3), *(p for p, _ in MALFORMED.values()), _good(4)]
    sub = requests.post(
        f"{stack.base_url}/v3/endpoints/{stack.endpoint_id}/submit",
        json={"tasks": {fid: payloads}},
        headers=headers,
        timeout=30,
    )
    assert sub.status_code == 200, sub.text
    ids = sub.json()["tasks"][fid]
    docs = _wait_terminal(stack.base_url, headers, ids)
    by_name = {name: docs[tid] for name, tid in zip(names, ids, strict=True)}

    for name, expected in (("good 3", 6), ("good 4", 8)):
        doc = by_name[name]
        assert doc["status"] == "success", doc
        assert SER.deserialize(doc["result"]) == expected
    for (name, (_, phrase)), tid in zip(MALFORMED.items(), ids[1:-1], strict=True):
        doc = by_name[name]
        assert doc["status"] == "failed", (name, doc)
        text = doc["exception"]
        assert f"Task {tid} could not be started" in text, (name, text)
        assert phrase in text, (name, text)
        assert "result" not in doc

    # The endpoint is still fine: a normal Executor task runs afterwards.
    with stack.executor() as ex:
        assert ex.submit(pow, 2, 10).result(timeout=DEADLINE_S) == 1024


# -- HTTP bodies --------------------------------------------------------------------------------


def _host_port(service: RunningService) -> tuple[str, int]:
    host, port = service.url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _submit_target(service: RunningService) -> tuple[str, str]:
    fid = service.call(
        "POST", "/v3/functions", json={"function_name": "f", "function_code": "10\n01\nabcdefg\n"}
    ).json()["function_uuid"]
    eid = service.call("POST", "/v3/endpoints", json={"endpoint_name": "bodies"}).json()[
        "endpoint_id"
    ]
    return fid, eid


def _task_count(service: RunningService) -> int:
    store = Store(service.state_dir)
    try:
        return store.database.connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    finally:
        store.close()


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 10 s pass)."""
    sock.settimeout(10)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


@pytest.mark.timeout(60)
@pytest.mark.parametrize("hang_up", ["half-close", "close"])
def test_truncated_body_is_not_acted_upon(service: RunningService, hang_up: str) -> None:
    """Content-Length promises more than is sent, then the client hangs up.

    The bytes that did arrive are a complete, valid submit document; acting on them would queue
    a task for a request the client never finished (this happened before the fix: the limits
    middleware handed the partial body to the route).
    """
    fid, eid = _submit_target(service)
    before = _task_count(service)
    body = json.dumps({"tasks": {fid: ["payload"]}}).encode()
    head = (
        f"POST /v3/endpoints/{eid}/submit HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {service.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 100}\r\n\r\n"
    ).encode()
    with socket.create_connection(_host_port(service), timeout=10) as sock:
        sock.sendall(head + body)
        if hang_up == "half-close":
            sock.shutdown(socket.SHUT_WR)
            answer = _read_response(sock)
            # Nothing, or a 4xx: never a 2xx for a request that was not complete.
            assert answer == b"" or answer.split(b" ", 2)[1].startswith(b"4"), answer[:200]
    service.assert_healthy()  # also orders after the server has handled the hang-up
    assert _task_count(service) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_oversized_body_gets_413(service: RunningService, framing: str) -> None:
    """A body over 10 MB: 413 TASK_PAYLOAD_TOO_LARGE, declared or streamed without a length."""
    fid, eid = _submit_target(service)
    before = _task_count(service)
    body = json.dumps({"tasks": {fid: ["p" * (MAX_REQUEST_BYTES + 1024)]}}).encode()
    data: Any = body
    if framing == "chunked":
        data = (body[i : i + 65536] for i in range(0, len(body), 65536))  # no Content-Length
    resp = service.call(
        "POST",
        f"/v3/endpoints/{eid}/submit",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413, resp.text[:300]
    doc = resp.json()
    assert doc["code"] == "TASK_PAYLOAD_TOO_LARGE"
    assert str(MAX_REQUEST_BYTES) in doc["message"] and isinstance(doc["request_id"], str)
    service.assert_healthy()
    assert _task_count(service) == before
    # Just under the limit is still accepted.
    ok = service.call(
        "POST",
        f"/v3/endpoints/{eid}/submit",
        json={"tasks": {fid: ["p" * (MAX_REQUEST_BYTES // 2)]}},
    )
    assert ok.status_code == 200, ok.text[:300]
