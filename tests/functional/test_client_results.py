"""Task results through the Client: parsing, failures, the bounded cache, batch polling."""

from __future__ import annotations

import json
import platform

import dill
import pytest
from responses import matchers

from globus_compute.errors import DeserializationError, TaskExecutionFailed, TaskPending
from globus_compute.serialize import ComputeSerializer
from tests.support.clients import BASE, make_client

T1 = "aaaaaaaa-0000-0000-0000-000000000001"
T2 = "aaaaaaaa-0000-0000-0000-000000000002"
T3 = "aaaaaaaa-0000-0000-0000-000000000003"
T4 = "aaaaaaaa-0000-0000-0000-000000000004"
SER = ComputeSerializer()
SAME_ENV = {"python_version": platform.python_version(), "dill_version": dill.__version__}


def success(tid: str, value, **extra) -> dict:
    doc = {"task_id": tid, "status": "success", "result": SER.serialize(value)}
    return doc | {"completion_t": "1677183605.212898"} | extra


def failure(tid: str, text: str = "Traceback ...\nZeroDivisionError: division by zero\n") -> dict:
    return {"task_id": tid, "status": "failed", "exception": text, "completion_t": "1.5"}


# -- get_task / get_result ----------------------------------------------------------------------


def test_get_result_success_is_fetched_once_then_cached(rsps, client):
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=success(T1, {"answer": 42}))
    assert client.get_result(T1) == {"answer": 42}
    assert client.get_result(T1.upper()) == {"answer": 42}
    assert client.get_task(T1)["completion_t"] == "1677183605.212898"
    assert len(rsps.calls) == 1


def test_get_result_pending_raises_task_pending_and_is_not_cached(rsps, client):
    rsps.get(f"{BASE}/v2/tasks/{T1}", json={"task_id": T1, "status": "WAITING-FOR-EP"})
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=success(T1, None))
    with pytest.raises(TaskPending) as info:
        client.get_result(T1)
    assert info.value.reason == "waiting-for-ep"
    assert client.get_result(T1) is None
    assert len(rsps.calls) == 2


def test_get_result_failure_raises_task_execution_failed_with_traceback(rsps, client):
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=failure(T1))
    with pytest.raises(TaskExecutionFailed) as info:
        client.get_result(T1)
    assert "ZeroDivisionError: division by zero" in str(info.value)
    assert info.value.completion_t == "1.5"
    # A failed task is terminal: the second call is answered from the cache, with a fresh copy.
    with pytest.raises(TaskExecutionFailed) as again:
        client.get_task(T1)
    assert again.value is not info.value and again.value.remote_data == info.value.remote_data
    assert len(rsps.calls) == 1


def test_failed_with_only_reason_raises_task_execution_failed(rsps, client):
    """Regression (reference bug): a failure with only ``reason`` gave KeyError('exception')."""
    rsps.get(f"{BASE}/v2/tasks/{T1}", json={"task_id": T1, "status": "failed", "reason": "lost"})
    with pytest.raises(TaskExecutionFailed, match="lost"):
        client.get_result(T1)


def test_wrong_task_id_in_document_is_a_clear_error(rsps, client):
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=success(T2, 1))
    with pytest.raises(ValueError, match="invalid response"):
        client.get_task(T1)


def test_undeserializable_result_raises_deserialization_error_and_is_not_cached(rsps, client):
    rsps.get(f"{BASE}/v2/tasks/{T1}", json={"task_id": T1, "status": "success", "result": "zz\nx"})
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=success(T1, 7))
    with pytest.raises(DeserializationError, match=f"the result of task {T1}"):
        client.get_result(T1)
    assert client.get_result(T1) == 7


def test_pending_details_are_reported(rsps, client):
    rsps.get(
        f"{BASE}/v2/tasks/{T1}", json={"task_id": T1, "status": "running", "details": {"a": 1}}
    )
    assert client.get_task(T1) == {"pending": True, "status": "running", "details": {"a": 1}}


# -- version mismatch warning -------------------------------------------------------------------


def test_environment_mismatch_warns_once_per_endpoint(rsps, client, recwarn):
    other = {"python_version": "2.7.18", "dill_version": "0.0.1"}
    rsps.get(f"{BASE}/v2/tasks/{T1}", json=success(T1, 1, details=other | {"endpoint_id": "e1"}))
    rsps.get(f"{BASE}/v2/tasks/{T2}", json=success(T2, 2, details=other | {"endpoint_id": "e1"}))
    rsps.get(f"{BASE}/v2/tasks/{T3}", json=success(T3, 3, details=other | {"endpoint_id": "e2"}))
    rsps.get(f"{BASE}/v2/tasks/{T4}", json=success(T4, 4, details=SAME_ENV | {"endpoint_id": "e3"}))
    for tid in (T1, T2, T3, T4):
        client.get_result(tid)
    messages = [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)]
    assert len(messages) == 2
    assert "endpoint e1 workers" in messages[0] and "Python 2.7.18" in messages[0]
    assert "endpoint e2 workers" in messages[1]


# -- get_batch_result ---------------------------------------------------------------------------


def batch_answer(*docs: dict) -> dict:
    return {"response": "batch", "results": {d["task_id"]: d for d in docs}}


def test_batch_result_includes_success_failure_and_pending_and_omits_unknown(rsps, client):
    rsps.post(
        f"{BASE}/v2/batch_status",
        json=batch_answer(success(T1, 10), failure(T2), {"task_id": T3, "status": "running"}),
        match=[matchers.json_params_matcher({"task_ids": [T1, T2, T3, T4]})],
    )
    out = client.get_batch_result([T1, T2.upper(), T3, T4, T1])
    assert set(out) == {T1, T2, T3}
    assert out[T1] == {
        "pending": False,
        "status": "success",
        "result": 10,
        "completion_t": "1677183605.212898",
    }
    assert out[T2]["pending"] is False and out[T2]["status"] == "failed"
    assert isinstance(out[T2]["exception"], TaskExecutionFailed)
    assert out[T2]["completion_t"] == "1.5"
    assert out[T3] == {"pending": True, "status": "running"}


def test_batch_result_asks_only_for_unfinished_tasks(rsps, client):
    rsps.post(f"{BASE}/v2/batch_status", json=batch_answer(success(T1, 1), failure(T2)))
    rsps.post(
        f"{BASE}/v2/batch_status",
        json=batch_answer(success(T3, 3)),
        match=[matchers.json_params_matcher({"task_ids": [T3]})],
    )
    client.get_batch_result([T1, T2])
    out = client.get_batch_result([T1, T2, T3])
    assert out[T1]["result"] == 1 and out[T3]["result"] == 3
    assert len(rsps.calls) == 2
    # All finished: no request at all.
    assert set(client.get_batch_result([T1, T2, T3])) == {T1, T2, T3}
    assert len(rsps.calls) == 2


def test_batch_result_wait_adds_query_parameter(rsps, client):
    rsps.post(
        f"{BASE}/v2/batch_status",
        json=batch_answer(success(T1, 1)),
        match=[
            matchers.query_param_matcher({"wait": "2.5"}),
            matchers.json_params_matcher({"task_ids": [T1]}),
        ],
    )
    assert client.get_batch_result([T1], wait=2.5)[T1]["result"] == 1
    assert rsps.calls[0].request.url == f"{BASE}/v2/batch_status?wait=2.5"


def test_batch_result_without_wait_has_no_query(rsps, client):
    rsps.post(f"{BASE}/v2/batch_status", json=batch_answer(success(T1, 1)))
    client.get_batch_result([T1])
    assert rsps.calls[0].request.url == f"{BASE}/v2/batch_status"


def test_batch_result_reports_undigestible_documents_as_exceptions(rsps, client):
    bad = {"task_id": T2, "status": "success", "result": "zz\nnot a strategy"}
    rsps.post(f"{BASE}/v2/batch_status", json=batch_answer(success(T1, 1), bad))
    out = client.get_batch_result([T1, T2])
    assert out[T1]["result"] == 1
    assert isinstance(out[T2]["exception"], DeserializationError)
    assert out[T2]["status"] == "failed"  # regression (issue 13 item 4): it said "success"
    assert "result" not in out[T2]


def test_batch_result_empty_list_makes_no_request(rsps, client):
    assert client.get_batch_result([]) == {}
    assert len(rsps.calls) == 0


# -- the bounded cache --------------------------------------------------------------------------


def test_cache_is_bounded_lru(rsps):
    client = make_client(task_cache_size=2)
    for tid in (T1, T2, T3):
        rsps.get(f"{BASE}/v2/tasks/{tid}", json=success(tid, tid))
    client.get_result(T1)
    client.get_result(T2)
    client.get_result(T1)  # refreshes T1, so T2 is the least recently used
    client.get_result(T3)  # evicts T2
    # Exactly T1 and T3 are cached: asking for them again makes no request...
    assert (client.get_result(T1), client.get_result(T3)) == (T1, T3)
    assert len(rsps.calls) == 3
    # ...and T2 is fetched again.
    rsps.get(f"{BASE}/v2/tasks/{T2}", json=success(T2, "again"))
    assert client.get_result(T2) == "again"
    assert [json.loads(c.response.text)["task_id"] for c in rsps.calls] == [T1, T2, T3, T2]
