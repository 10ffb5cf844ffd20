"""The hot routes (``service/hot_routes.py``) answer as the FastAPI routes do.

Each request is sent twice to the real service: as the SDK and the agent send it (served by
the hot routes) and with an extra query parameter FastAPI ignores (which the hot routes leave to
FastAPI). Status and body must match, ids and request ids aside. Which of the two serves a
request is pinned in ``tests/unit/test_hot_routes.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from globus_compute.protocol.agent import AGENT_PREFIX
from tests.support.service import RunningService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

_VARYING = {"request_id", "task_group_id"}


def _shape(value: Any) -> Any:
    """``value`` with the ids that differ between two equal requests blanked out."""
    if isinstance(value, dict):
        return {
            ("<uuid>" if _is_uuid(k) else k): ("<id>" if k in _VARYING else _shape(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "<uuid>" if isinstance(value, str) and _is_uuid(value) else value


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _both(
    service: RunningService, path: str, slow_kw: dict[str, Any] | None = None, **kw: Any
) -> tuple[Any, Any]:
    """The hot and the FastAPI answer to ``path`` (the latter's request with ``slow_kw``)."""
    hot = service.call("POST", path, **kw)
    sep = "&" if "?" in path else "?"
    slow = service.call("POST", f"{path}{sep}via=fastapi", **(slow_kw or kw))
    assert hot.headers["content-type"] == slow.headers["content-type"]

    def answer(response: Any) -> Any:
        return response.status_code, _shape(response.json())

    return answer(hot), answer(slow)


def _endpoint(service: RunningService) -> str:
    reply = service.call("POST", "/v3/endpoints", json={"endpoint_name": "hot", "metadata": {}})
    assert reply.status_code == 200, reply.text
    return reply.json()["endpoint_id"]


def _function(service: RunningService) -> str:
    reply = service.call("POST", "/v3/functions", json={"function_name": "f", "function_code": "x"})
    assert reply.status_code == 200, reply.text
    return reply.json()["function_uuid"]


def test_submits_and_refusals_match(service: RunningService):
    eid, fid = _endpoint(service), _function(service)
    path = f"/v3/endpoints/{eid}/submit"
    good = {"tasks": {fid: ["payload"]}, "create_queue": False}
    hot, slow = _both(service, path, json=good)
    assert hot == slow and hot[0] == 200
    for body in (b"not json", b"[1, 2]", b'{"tasks": 3}'):
        hot, slow = _both(service, path, data=body)
        assert hot == slow and 400 <= hot[0] < 500, hot
    hot, slow = _both(service, f"/v3/endpoints/{uuid.uuid4()}/submit", json=good)
    assert hot == slow and hot[0] == 404


def test_batch_status_with_and_without_wait_matches(service: RunningService):
    eid, fid = _endpoint(service), _function(service)
    reply = service.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}})
    tid = reply.json()["tasks"][fid][0]
    body = {"task_ids": [tid, str(uuid.uuid4())]}
    for path in ("/v2/batch_status", "/v2/batch_status?wait=0.05"):
        hot, slow = _both(service, path, json=body)
        assert hot == slow and hot[0] == 200 and list(hot[1]["results"]) == ["<uuid>"]
    hot, slow = _both(service, "/v2/batch_status", json={"task_ids": "nope"})
    assert hot == slow and hot[0] == 422


def test_agent_claims_and_results_match(service: RunningService):
    eid, fid = _endpoint(service), _function(service)
    submit = service.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p", "p"]}})
    a, b = submit.json()["tasks"][fid]
    claim = f"{AGENT_PREFIX}/{eid}/claim"
    hot, slow = _both(service, claim, json={"max_tasks": 1, "wait_s": 0})
    assert hot == slow and hot[0] == 200 and len(hot[1]["tasks"]) == 1
    hot, slow = _both(service, claim, json={"max_tasks": 0})
    assert hot == slow and hot[0] == 422
    results = f"{AGENT_PREFIX}/{eid}/results"
    done = {"status": "success", "result": "r", "completion_t": "1700000000.0"}
    hot, slow = _both(
        service,
        results,
        json={"results": [{"task_id": a, **done}]},
        slow_kw={"json": {"results": [{"task_id": b, **done}]}},  # a second report is ignored
    )
    assert hot == slow and hot[0] == 200
    hot, slow = _both(service, results, json={"results": [{"task_id": a}]})
    assert hot == slow and 400 <= hot[0] < 500
    hot, slow = _both(service, f"{AGENT_PREFIX}/{uuid.uuid4()}/results", json={"results": []})
    assert hot == slow and hot[0] == 404
