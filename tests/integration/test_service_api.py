"""The real service over HTTP with ``requests``: routes, errors, long polls, limits."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.store import Store

pytestmark = pytest.mark.integration

FN_CODE = "10\n01\nabcdefg\n"


def _call(svc: Any, method: str, path: str, **kw) -> requests.Response:
    kw.setdefault("headers", svc.headers)
    return requests.request(method, svc.url + path, timeout=30, **kw)


def _function_and_endpoint(svc: Any) -> tuple[str, str]:
    fid = _call(
        svc, "POST", "/v3/functions", json={"function_name": "f", "function_code": FN_CODE}
    ).json()["function_uuid"]
    eid = _call(svc, "POST", "/v3/endpoints", json={"endpoint_name": "ep"}).json()["endpoint_id"]
    return fid, eid


def _assert_error(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert {type(body[k]) for k in ("code", "message", "request_id")} == {str}
    return body


def test_version_shapes(service: Any) -> None:
    assert _call(service, "GET", "/v2/version").json() == "1.0.0"
    full = _call(service, "GET", "/v2/version", params={"service": "all"}).json()
    assert {"api", "min_sdk_version", "min_ep_version", "min_endpoint_version", "git_sha"} <= set(
        full
    )


def test_errors_are_json_4xx(service: Any) -> None:
    _assert_error(_call(service, "GET", "/v2/endpoints", headers={}), 401)
    _assert_error(
        _call(service, "GET", "/v2/endpoints", headers={"Authorization": "Bearer x"}), 401
    )
    _assert_error(_call(service, "GET", "/no/such/path"), 404)
    _assert_error(_call(service, "GET", "/v2/functions/not-a-uuid"), 404)
    _assert_error(_call(service, "GET", f"/v2/tasks/{uuid.uuid4()}"), 404)
    _assert_error(_call(service, "POST", "/v2/batch_status", data=b"{broken"), 400)
    _assert_error(_call(service, "POST", "/v2/batch_status", json={"task_ids": 5}), 422)
    _assert_error(_call(service, "POST", "/v3/functions", json={"function_name": 3}), 422)
    _assert_error(_call(service, "POST", "/v3/functions", json=[1, 2]), 422)
    body = _assert_error(_call(service, "GET", "/v2/get_amqp_result_connection_url"), 404)
    assert "batch_status" in body["message"]
    assert _call(service, "GET", "/openapi.json").json()["paths"]["/v2/batch_status"]


def test_submit_claim_result_flow_with_case_insensitive_ids(service: Any) -> None:
    fid, eid = _function_and_endpoint(service)
    key = fid.upper()
    sub = _call(
        service,
        "POST",
        f"/v3/endpoints/{eid.upper()}/submit",
        json={"tasks": {key: ["p1", "p2"]}, "create_queue": True},
    )
    assert sub.status_code == 200, sub.text
    doc = sub.json()
    assert list(doc["tasks"]) == [key] and doc["endpoint_id"] == eid
    tids = doc["tasks"][key]
    uuid.UUID(doc["request_id"]), uuid.UUID(doc["task_group_id"])
    assert _call(service, "GET", f"/v2/tasks/{tids[0]}").json()["status"] == "waiting-for-ep"

    claim = _call(
        service, "POST", f"{AGENT_PREFIX}/{eid}/claim", json={"max_tasks": 10, "wait_s": 0}
    ).json()
    assert [t["task_id"] for t in claim["tasks"]] == tids
    assert claim["tasks"][1]["task_buffer"] == FN_CODE + "p2"
    assert _call(service, "GET", f"/v2/tasks/{tids[0]}").json()["status"] == "running"
    results = [
        {"task_id": tids[0], "status": "success", "result": "00\nx\n", "completion_t": "5.0"}
    ]
    assert _call(
        service, "POST", f"{AGENT_PREFIX}/{eid}/results", json={"results": results}
    ).json() == {"accepted": 1, "ignored": 0}
    assert _call(
        service, "POST", f"{AGENT_PREFIX}/{eid}/results", json={"results": results}
    ).json() == {"accepted": 0, "ignored": 1}
    batch = _call(service, "POST", "/v2/batch_status", json={"task_ids": tids}).json()
    assert batch["response"] == "batch"
    assert batch["results"][tids[0]]["result"] == "00\nx\n"
    assert batch["results"][tids[0]]["completion_t"] == "5.0"
    assert batch["results"][tids[1]] == {"task_id": tids[1], "status": "running"}
    group = _call(service, "GET", f"/v2/taskgroup/{doc['task_group_id']}").json()
    assert [t["id"] for t in group["tasks"]] == tids


def test_batch_status_wait_returns_when_a_result_arrives(service: Any) -> None:
    fid, eid = _function_and_endpoint(service)
    (tid,) = _call(
        service, "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}}
    ).json()["tasks"][fid]
    _call(service, "POST", f"{AGENT_PREFIX}/{eid}/claim", json={"max_tasks": 1})
    answer: dict = {}

    def poll() -> None:
        t0 = time.monotonic()
        answer["body"] = _call(
            service, "POST", "/v2/batch_status", params={"wait": 20}, json={"task_ids": [tid]}
        ).json()
        answer["elapsed"] = time.monotonic() - t0

    poller = threading.Thread(target=poll)
    poller.start()
    poller.join(0.3)  # give the poll time to park; the result must wake it, not the timeout
    assert poller.is_alive()
    _call(
        service,
        "POST",
        f"{AGENT_PREFIX}/{eid}/results",
        json={
            "results": [
                {
                    "task_id": tid,
                    "status": "failed",
                    "exception": "ValueError: x",
                    "completion_t": "1",
                }
            ]
        },
    )
    poller.join(30)
    assert answer["body"]["results"][tid]["status"] == "failed"
    assert answer["elapsed"] < 10


def test_claim_long_poll_wakes_on_submit(service: Any) -> None:
    fid, eid = _function_and_endpoint(service)
    got: dict = {}

    def claim() -> None:
        t0 = time.monotonic()
        got["body"] = _call(
            service, "POST", f"{AGENT_PREFIX}/{eid}/claim", json={"max_tasks": 5, "wait_s": 20}
        ).json()
        got["elapsed"] = time.monotonic() - t0

    claimer = threading.Thread(target=claim)
    claimer.start()
    claimer.join(0.3)
    _call(service, "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}})
    claimer.join(30)
    assert len(got["body"]["tasks"]) == 1 and got["elapsed"] < 10


def test_heartbeat_status_and_lock(service: Any) -> None:
    _, eid = _function_and_endpoint(service)
    assert _call(service, "GET", f"/v2/endpoints/{eid}/status").json()["status"] == "offline"
    hb = _call(
        service,
        "POST",
        f"{AGENT_PREFIX}/{eid}/heartbeat",
        json={
            "status": {
                "total_workers": 4,
                "idle_workers": 4,
                "pending_tasks": 0,
                "outstanding_tasks": 0,
                "managers": 1,
            }
        },
    ).json()
    assert hb["stop"] is False and hb["lease_s"] > 0
    status = _call(service, "GET", f"/v2/endpoints/{eid}/status").json()
    assert status["status"] == "online" and status["details"]["total_workers"] == 4
    lock = _call(service, "POST", f"/v3/endpoints/{eid}/lock").json()
    assert lock["endpoint_id"] == eid
    assert _call(service, "POST", f"{AGENT_PREFIX}/{eid}/heartbeat", json={"status": {}}).json()[
        "stop"
    ]
    meta = _call(service, "GET", f"/v2/endpoints/{eid}").json()
    assert meta["uuid"] == eid and meta["name"] == "ep"
    allowed = _call(service, "GET", f"/v3/endpoints/{eid}/allowed_functions").json()
    assert allowed == {"endpoint_id": eid, "restricted": False}
    assert _call(service, "DELETE", f"/v2/endpoints/{eid}").json() == {"result": 302}
    _assert_error(_call(service, "GET", f"/v2/endpoints/{eid}"), 404)


def test_other_identity_sees_nothing(service: Any) -> None:
    fid, eid = _function_and_endpoint(service)
    (tid,) = _call(
        service, "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}}
    ).json()["tasks"][fid]
    store = Store(service.state_dir)
    other = {"Authorization": f"Bearer {store.identities.ensure_user('mallory')}"}
    store.close()
    _assert_error(_call(service, "GET", f"/v2/tasks/{tid}", headers=other), 404)
    assert (
        _call(service, "POST", "/v2/batch_status", headers=other, json={"task_ids": [tid]}).json()[
            "results"
        ]
        == {}
    )
    _assert_error(_call(service, "GET", f"/v2/functions/{fid}", headers=other), 404)
    _assert_error(
        _call(
            service,
            "POST",
            f"/v3/endpoints/{eid}/submit",
            headers=other,
            json={"tasks": {fid: ["p"]}},
        ),
        404,
    )
    _assert_error(
        _call(service, "POST", f"{AGENT_PREFIX}/{eid}/claim", headers=other, json={"max_tasks": 1}),
        404,
    )
    assert _call(service, "GET", "/v2/endpoints", headers=other).json() == []


def test_oversized_request_gets_413(service: Any) -> None:
    _, eid = _function_and_endpoint(service)
    big = {"tasks": {str(uuid.uuid4()): ["x" * (10 * 1024 * 1024)]}}
    body = _assert_error(_call(service, "POST", f"/v3/endpoints/{eid}/submit", json=big), 413)
    assert body["code"] == "TASK_PAYLOAD_TOO_LARGE"

    def chunks():
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    streamed = _call(service, "POST", "/v3/functions", data=chunks())
    assert _assert_error(streamed, 413)["code"] == "TASK_PAYLOAD_TOO_LARGE"


def test_rate_limit_answers_429_with_retry_after(service_factory) -> None:
    svc = service_factory("--rate-limit", "0.5")
    statuses = [_call(svc, "GET", "/v2/endpoints") for _ in range(8)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    _assert_error(limited[0], 429)


def test_sigterm_exits_cleanly(service: Any) -> None:
    assert service.stop() == 0


def test_lease_expiry_fails_task_with_endpoint_lost(service_factory) -> None:
    svc = service_factory("--lease-s", "0.5")
    fid, eid = _function_and_endpoint(svc)
    (tid,) = _call(svc, "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}}).json()[
        "tasks"
    ][fid]
    assert (
        len(
            _call(svc, "POST", f"{AGENT_PREFIX}/{eid}/claim", json={"max_tasks": 1}).json()["tasks"]
        )
        == 1
    )
    # No heartbeat follows: the sweeper must fail the task; the long poll returns when it does.
    deadline = time.monotonic() + 20
    doc: dict = {}
    while time.monotonic() < deadline and doc.get("status") != "failed":
        body = _call(svc, "POST", "/v2/batch_status", params={"wait": 5}, json={"task_ids": [tid]})
        doc = body.json()["results"][tid]
    assert doc["status"] == "failed"
    assert "EndpointLost" in doc["exception"] and "stopped heartbeating" in doc["exception"]
