"""The reference ``globus-compute-sdk`` 4.19.0 Client against our service, plus crash recovery.

No agent runs here: the tests play the endpoint by calling the agent routes themselves.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX

globus_sdk = pytest.importorskip("globus_sdk")
gcsdk = pytest.importorskip("globus_compute_sdk")

pytestmark = pytest.mark.integration


def double(x):
    """Double a number."""
    return 2 * x


def _client(svc: Any, token: str | None = None) -> Any:
    authorizer = globus_sdk.AccessTokenAuthorizer(token or svc.token)
    gcc = gcsdk.Client(authorizer=authorizer, do_version_check=False)
    gcc._compute_web_client.v2.base_url = svc.url
    gcc._compute_web_client.v3.base_url = svc.url
    gcc.version_check()
    return gcc


def _agent(svc: Any, eid: str, path: str, body: dict) -> dict:
    resp = requests.post(
        f"{svc.url}{AGENT_PREFIX}/{eid}/{path}", json=body, headers=svc.headers, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def _run_claimed(svc: Any, eid: str) -> int:
    """Act as the endpoint: run every claimed task with the reference serializer."""
    ser = gcsdk.serialize.ComputeSerializer()
    tasks = _agent(svc, eid, "claim", {"max_tasks": 100, "wait_s": 0})["tasks"]
    results = []
    for task in tasks:
        fn, args, kwargs = (ser.deserialize(b) for b in ser.unpack_buffers(task["task_buffer"]))
        results.append(
            {
                "task_id": task["task_id"],
                "status": "success",
                "result": ser.serialize(fn(*args, **kwargs)),
                "completion_t": str(time.time()),
            }
        )
    return _agent(svc, eid, "results", {"results": results})["accepted"] if tasks else 0


def _register_endpoint(svc: Any) -> str:
    resp = requests.post(
        f"{svc.url}/v3/endpoints", json={"endpoint_name": "ep"}, headers=svc.headers, timeout=30
    )
    return resp.json()["endpoint_id"]


def test_reference_client_full_flow(service: Any) -> None:
    gcc = _client(service)
    eid = _register_endpoint(service)
    fid = gcc.register_function(double)
    fn_doc = gcc.get_function(fid)
    assert fn_doc["function_uuid"] == fid and fn_doc["function_name"] == "double"
    assert fn_doc["description"] == "Double a number."

    tid = gcc.run(21, endpoint_id=eid, function_id=fid)
    with pytest.raises(gcsdk.errors.TaskPending):
        gcc.get_result(tid)
    batch = gcc.create_batch()
    for i in range(5):
        batch.add(fid, args=(i,))
    submitted = gcc.batch_run(eid, batch)
    tids = submitted["tasks"][fid]
    assert len(tids) == 5

    assert _run_claimed(service, eid) == 6
    assert gcc.get_result(tid) == 42
    results = gcc.get_batch_result(tids)
    assert [results[t]["result"] for t in tids] == [0, 2, 4, 6, 8]
    assert not any(r["pending"] for r in results.values())

    assert eid in {e["uuid"] for e in gcc.get_endpoints()}
    assert gcc.get_endpoint_metadata(eid)["uuid"] == eid
    assert gcc.delete_function(fid)["result"] == 302
    with pytest.raises(globus_sdk.GlobusAPIError) as err:
        gcc.get_function(fid)
    assert err.value.http_status == 404


def test_reference_client_bad_token_gets_401(service: Any) -> None:
    gcc = _client(service)
    gcc._compute_web_client.v2.authorizer = globus_sdk.AccessTokenAuthorizer("not-a-token")
    with pytest.raises(globus_sdk.GlobusAPIError) as err:
        gcc.get_endpoints()
    assert err.value.http_status == 401 and err.value.code == "UNAUTHORIZED"


def test_reference_client_failed_task_raises_with_traceback(service: Any) -> None:
    gcc = _client(service)
    eid = _register_endpoint(service)
    tid = gcc.run(1, endpoint_id=eid, function_id=gcc.register_function(double))
    (task,) = _agent(service, eid, "claim", {"max_tasks": 1})["tasks"]
    _agent(
        service,
        eid,
        "results",
        {
            "results": [
                {
                    "task_id": task["task_id"],
                    "status": "failed",
                    "completion_t": "1.0",
                    "exception": "Traceback (most recent call last):\nValueError: boom\n",
                }
            ]
        },
    )
    with pytest.raises(gcsdk.errors.TaskExecutionFailed) as err:
        gcc.get_result(tid)
    assert "ValueError: boom" in str(err.value)


def test_kill9_restart_keeps_tasks_and_results(service_factory: Any) -> None:
    svc = service_factory()
    gcc = _client(svc)
    eid = _register_endpoint(svc)
    fid = gcc.register_function(double)
    batch = gcc.create_batch()
    for i in range(10):
        batch.add(fid, args=(i,))
    tids = gcc.batch_run(eid, batch)["tasks"][fid]
    claimed = _agent(svc, eid, "claim", {"max_tasks": 4})["tasks"]
    ser = gcsdk.serialize.ComputeSerializer()
    _agent(
        svc,
        eid,
        "results",
        {
            "results": [
                {
                    "task_id": t["task_id"],
                    "status": "success",
                    "result": ser.serialize(-1),
                    "completion_t": "1.0",
                }
                for t in claimed
            ]
        },
    )
    svc.kill9()

    svc2 = service_factory(state_dir=svc.state_dir)
    assert svc2.token == svc.token
    gcc2 = _client(svc2)
    # Re-registration releases the 4 done tasks' leases (none held) and keeps the 6 waiting.
    assert _register_endpoint(svc2) == eid
    assert _run_claimed(svc2, eid) == 6
    results = gcc2.get_batch_result(tids)
    assert sorted(r["result"] for r in results.values()) == [-1] * 4 + sorted(
        2 * i for i in range(10) if tids[i] not in {t["task_id"] for t in claimed}
    )
    assert str(uuid.UUID(eid)) == eid
