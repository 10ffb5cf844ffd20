"""User input the service cannot keep gets a 4xx JSON error, never a 500 (issue 16 items 5-6).

Why: a submit whose ``resource_specification`` nested 300 deep answered 500 (the parser accepts
1024 levels, the encoder refuses beyond 255), so did a heartbeat nested 990 deep; a 30-digit
integer was accepted but came back as a float; ``task_group_id: "zzz"`` silently created a new
group, ``create_queue: "maybe"`` passed, ``batch_status`` of a non-UUID answered 200 and a
100,000-character ``function_name`` was stored. Each refusal must be the service's own 4xx body
(``code``, ``message``, ``request_id``), which the reference client turns into a
``ComputeAPIError`` at once instead of retrying a 5xx for 15 s.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from globus_compute.protocol.agent import AGENT_PREFIX
from tests.support.service import RunningService

pytestmark = pytest.mark.integration

FN_CODE = "10\n01\nabcdefg\n"
HUGE_INT = 123456789012345678901234567890


def _with_deep(doc: dict[str, Any], key: str, depth: int) -> str:
    """``doc`` as JSON text, with ``doc[key]`` an object nested ``depth`` deep.

    Written as text: the standard encoder goes only about 1000 levels deep by recursion.
    """
    deep = '{"x": ' * (depth - 1) + "{}" + "}" * (depth - 1)
    return json.dumps({**doc, key: "DEEP"}).replace('"DEEP"', deep)


def _raw_json(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def target(service: RunningService) -> tuple[str, str]:
    """A function and an endpoint of the default identity."""
    fid = service.call(
        "POST", "/v3/functions", json={"function_name": "f", "function_code": FN_CODE}
    ).json()["function_uuid"]
    eid = service.call("POST", "/v3/endpoints", json={"endpoint_name": "limits"}).json()[
        "endpoint_id"
    ]
    return fid, eid


def _assert_refused(reply: Any, status: int, phrase: str) -> None:
    assert reply.status_code == status, reply.text[:300]
    doc = reply.json()
    assert isinstance(doc["code"], str) and isinstance(doc["request_id"], str)
    assert phrase in doc["message"], doc


@pytest.mark.parametrize("field", ["resource_specification", "user_endpoint_config"])
def test_submit_nested_300_deep_is_refused(
    service: RunningService, target: tuple[str, str], field: str
) -> None:
    fid, eid = target
    body = _with_deep({"tasks": {fid: ["p"]}}, field, 300)
    reply = service.call(
        "POST",
        f"/v3/endpoints/{eid}/submit",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    _assert_refused(reply, 422, "deeper than")
    service.assert_healthy()


def test_heartbeat_nested_990_deep_is_refused(
    service: RunningService, target: tuple[str, str]
) -> None:
    _, eid = target
    reply = service.call(
        "POST",
        f"{AGENT_PREFIX}/{eid}/heartbeat",
        data=_with_deep({}, "status", 990),
        headers={"Content-Type": "application/json"},
    )
    _assert_refused(reply, 422, "deeper than")
    service.assert_healthy()


def test_function_metadata_nested_300_deep_is_refused(service: RunningService) -> None:
    body = _with_deep({"function_name": "f", "function_code": FN_CODE}, "meta", 300)
    reply = service.call(
        "POST", "/v3/functions", data=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= reply.status_code < 500, reply.text[:300]
    assert isinstance(reply.json()["code"], str)
    service.assert_healthy()


def test_a_30_digit_integer_reaches_the_endpoint_exactly(
    service: RunningService, target: tuple[str, str]
) -> None:
    fid, eid = target
    spec = {"big": HUGE_INT, "negative": -HUGE_INT, "nested": [{"n": HUGE_INT}], "real": 1e30}
    reply = service.call(
        "POST",
        f"/v3/endpoints/{eid}/submit",
        data=_raw_json({"tasks": {fid: ["p"]}, "resource_specification": spec}),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 200, reply.text[:300]
    (tid,) = reply.json()["tasks"][fid]
    claim = service.call("POST", f"{AGENT_PREFIX}/{eid}/claim", json={"max_tasks": 100})
    assert claim.status_code == 200, claim.text[:300]
    (task,) = [t for t in json.loads(claim.text)["tasks"] if t["task_id"] == tid]
    assert task["resource_specification"] == spec
    assert type(task["resource_specification"]["big"]) is int


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        ({"task_group_id": "zzz"}, "task_group_id"),
        ({"create_queue": "maybe"}, "create_queue"),
        ({"user_runtime": "python"}, "user_runtime"),
    ],
)
def test_malformed_submit_settings_are_refused(
    service: RunningService, target: tuple[str, str], extra: dict[str, Any], phrase: str
) -> None:
    fid, eid = target
    groups_before = _groups(service)
    reply = service.call(
        "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}, **extra}
    )
    _assert_refused(reply, 422, phrase)
    assert _groups(service) == groups_before  # no group was created


def _groups(service: RunningService) -> int:
    from globus_compute.service.store import Store

    store = Store(service.state_dir)
    try:
        return int(
            store.database.connection.execute("SELECT count(*) FROM task_groups").fetchone()[0]
        )
    finally:
        store.close()


def test_batch_status_of_a_non_uuid_is_refused(service: RunningService) -> None:
    reply = service.call("POST", "/v2/batch_status", json={"task_ids": ["not-a-uuid"]})
    _assert_refused(reply, 422, "not-a-uuid")


def test_an_over_long_function_name_is_refused(service: RunningService) -> None:
    reply = service.call(
        "POST", "/v3/functions", json={"function_name": "f" * 100_000, "function_code": FN_CODE}
    )
    _assert_refused(reply, 422, "function_name")
