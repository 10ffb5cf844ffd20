"""Bad input on every route: schema-driven fuzzing (schemathesis) and raw hypothesis bodies.

Why: the service is reachable by anything that holds a token (and its 401 path by anything that
can reach the port). A 5xx makes the reference client retry for ~15 s, and a crash or a wedged
event loop takes every user's tasks with it. So every route must answer malformed input with a
4xx JSON error body, and the service must still serve a normal request afterwards.

The schema is the one the running service serves at ``/openapi.json``; requests go to the real
server on a loopback port with a valid bearer token. Path ids are fuzzed as generated and, for a
second call, replaced by ids of real resources so that body fuzzing also reaches the code behind
the ownership checks. Example counts are bounded so the module finishes in about a minute.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from globus_compute.protocol.agent import AGENT_PREFIX
from tests.support.service import RunningService

pytestmark = pytest.mark.integration

#: Examples per operation for the schema fuzzer, and per route for the raw-body fuzzer.
SCHEMA_EXAMPLES = 100
RAW_EXAMPLES = 300

FN_CODE = "10\n01\nabcdefg\n"


@dataclass
class FuzzState:
    """Real resources to aim fuzzed requests at, and how many requests were sent."""

    function_id: str
    endpoint_id: str
    task_id: str
    task_group_id: str
    requests_sent: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, what: str, status: int) -> None:
        self.requests_sent[what] = self.requests_sent.get(what, 0) + 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


@pytest.fixture(scope="module")
def fuzz_state(service: RunningService) -> Iterator[FuzzState]:
    fid = service.call(
        "POST", "/v3/functions", json={"function_name": "f", "function_code": FN_CODE}
    ).json()["function_uuid"]
    eid = service.call("POST", "/v3/endpoints", json={"endpoint_name": "fuzz"}).json()[
        "endpoint_id"
    ]
    sub = service.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}}).json()
    state = FuzzState(fid, eid, sub["tasks"][fid][0], sub["task_group_id"])
    yield state
    total = sum(state.requests_sent.values())
    print(f"\nfuzz requests sent: {total} {state.requests_sent}; statuses {state.statuses}")


@pytest.fixture(scope="module")
def api_schema(service: RunningService) -> Any:
    """The schema exactly as the running service serves it."""
    return schemathesis.openapi.from_url(f"{service.url}/openapi.json", headers=service.headers)


schema = schemathesis.pytest.from_fixture("api_schema")

_REAL_IDS = {
    "function_id": "function_id",
    "endpoint_id": "endpoint_id",
    "task_id": "task_id",
    "task_group_id": "task_group_id",
}


def assert_clean_answer(resp: requests.Response | Any, what: str) -> None:
    """No 5xx, and any error is the reference JSON error body with string fields."""
    status = resp.status_code
    assert status < 500, f"{what}: {status} {resp.text[:500]}"
    if status >= 400:
        ctype = resp.headers.get("content-type") or resp.headers.get("Content-Type")
        ctype = ctype[0] if isinstance(ctype, list) else ctype  # schemathesis: list of values
        assert ctype and ctype.startswith("application/json"), f"{what}: {ctype}"
        body = json.loads(resp.text)
        assert isinstance(body, dict), what
        for key in ("code", "message", "request_id"):
            assert isinstance(body.get(key), str), f"{what}: {body}"


@schema.parametrize()
@settings(
    max_examples=SCHEMA_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@pytest.mark.timeout(120)
def test_schema_fuzz_no_server_errors(
    case: Any, service: RunningService, fuzz_state: FuzzState
) -> None:
    """Every operation of the served schema, positive and negative data, as generated."""
    headers = {"Authorization": f"Bearer {service.token}"}
    what = f"{case.method} {case.formatted_path}"
    if case.path_parameters and "claim" in case.path:
        # A claim on a real endpoint long-polls for wait_s (up to 30 s): keep fuzzing fast.
        if isinstance(case.body, dict) and "wait_s" in case.body:
            case.body["wait_s"] = 0
    resp = case.call(base_url=service.url, headers=headers, timeout=30)
    fuzz_state.count("schema", resp.status_code)
    case.validate_response(resp, checks=[not_a_server_error])
    assert_clean_answer(resp, what)
    # Same body, aimed at real resources (deleting them would starve the rest of the run).
    if case.path_parameters and case.method.upper() != "DELETE":
        case.path_parameters = {
            k: getattr(fuzz_state, _REAL_IDS[k]) if k in _REAL_IDS else v
            for k, v in case.path_parameters.items()
        }
        resp = case.call(base_url=service.url, headers=headers, timeout=30)
        fuzz_state.count("schema", resp.status_code)
        assert_clean_answer(resp, f"{case.method} {case.formatted_path} (real ids)")


# -- raw bodies for the hot routes --------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["\ud800", "00\ngAROLg==\n", str(uuid.uuid4()), "", "NaN"])
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _near_valid(route: str, state: FuzzState) -> st.SearchStrategy[Any]:
    """Bodies shaped like the real ones with fuzzed leaves, to get past the first checks."""
    ids = st.sampled_from([state.task_id, state.function_id, str(uuid.uuid4()), "x"]) | st.text(
        max_size=40
    )
    if route == "submit":
        return st.fixed_dictionaries(
            {
                "tasks": st.dictionaries(
                    ids, st.lists(_json_values, max_size=3) | _json_values, max_size=3
                )
            },
            optional={
                "task_group_id": _json_values | ids,
                "result_serializers": st.lists(_json_values, max_size=3) | _json_values,
                "resource_specification": _json_values,
                "user_endpoint_config": _json_values,
                "create_queue": _json_values,
            },
        )
    if route == "batch_status":
        return st.fixed_dictionaries(
            {"task_ids": st.lists(ids | _json_values, max_size=6) | _json_values}
        )
    if route == "register_function":
        return st.fixed_dictionaries(
            {
                "function_name": _json_values | st.text(max_size=20),
                "function_code": _json_values | st.text(),
            },
            optional={
                "public": _json_values,
                "group": _json_values | ids,
                "meta": _json_values,
                "description": _json_values,
                "ha_endpoint_id": _json_values | ids,
                "serialized": _json_values,
            },
        )
    if route == "claim":
        return st.fixed_dictionaries(
            {"max_tasks": _json_values | st.integers(min_value=-5, max_value=2**64)},
            optional={"wait_s": st.sampled_from([0, 0.0, -1, "1", None, [], True, 1e308, -1e308])},
        )
    if route == "results":
        item = st.fixed_dictionaries(
            {
                "task_id": ids | _json_values,
                "status": st.sampled_from(["success", "failed", "x"]) | _json_values,
            },
            optional={
                "result": _json_values,
                "exception": _json_values,
                "completion_t": _json_values,
                "details": _json_values,
            },
        )
        return st.fixed_dictionaries({"results": st.lists(item, max_size=4) | _json_values})
    return st.fixed_dictionaries({"status": _json_values})  # heartbeat


def _raw_bodies(route: str, state: FuzzState) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, arbitrary JSON, and near-valid JSON (the most useful third)."""
    as_json = _json_values | _near_valid(route, state)
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        as_json.map(lambda v: json.dumps(v).encode()),
        as_json.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    )


HOT_ROUTES = ["submit", "batch_status", "register_function", "claim", "results", "heartbeat"]


def _route_path(route: str, state: FuzzState) -> str:
    return {
        "submit": f"/v3/endpoints/{state.endpoint_id}/submit",
        "batch_status": "/v2/batch_status",
        "register_function": "/v3/functions",
        "claim": f"{AGENT_PREFIX}/{state.endpoint_id}/claim",
        "results": f"{AGENT_PREFIX}/{state.endpoint_id}/results",
        "heartbeat": f"{AGENT_PREFIX}/{state.endpoint_id}/heartbeat",
    }[route]


@pytest.mark.parametrize("route", HOT_ROUTES)
@pytest.mark.timeout(120)
def test_raw_bodies_on_hot_routes(
    route: str, service: RunningService, fuzz_state: FuzzState
) -> None:
    """Hypothesis-driven bodies (bytes, JSON, near-valid documents) on the hot routes."""
    path = _route_path(route, fuzz_state)
    statuses: dict[int, int] = {}

    @settings(
        max_examples=RAW_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(body=_raw_bodies(route, fuzz_state))
    def run(body: bytes) -> None:
        if route == "claim":
            # Never long-poll during fuzzing: the claim would park for wait_s seconds.
            body = re.sub(rb'"wait_s":\s*[^,}]+', b'"wait_s": 0', body)
        resp = service.call("POST", path, data=body, headers={"Content-Type": "application/json"})
        fuzz_state.count(f"raw:{route}", resp.status_code)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert_clean_answer(resp, f"POST {path} {body[:200]!r}")

    run()
    # Something got through to the real logic, not only the JSON parser.
    assert len(statuses) >= 2, statuses
    service.assert_healthy()


@pytest.mark.timeout(30)
def test_service_healthy_after_fuzzing(service: RunningService, fuzz_state: FuzzState) -> None:
    """After all of the above the same process still serves, and a real submit still works."""
    service.assert_healthy()
    # The fuzzing (when it ran before this test) reached the real logic, not only refusals.
    if fuzz_state.requests_sent:
        assert fuzz_state.statuses.get(200, 0) > 0 and fuzz_state.statuses.get(422, 0) > 0
    assert not [code for code in fuzz_state.statuses if code >= 500]
    # Fresh resources: the fuzzer may legitimately have locked, restricted (allowed_functions)
    # or deleted the ones it was pointed at.
    endpoint = service.call("POST", "/v3/endpoints", json={"endpoint_name": "after-fuzzing"})
    assert endpoint.status_code == 200, endpoint.text
    endpoint_id = endpoint.json()["endpoint_id"]
    function = service.call(
        "POST", "/v3/functions", json={"function_name": "f", "function_code": "3\n01\nx"}
    )
    assert function.status_code == 200, function.text
    function_id = function.json()["function_uuid"]
    sub = service.call(
        "POST", f"/v3/endpoints/{endpoint_id}/submit", json={"tasks": {function_id: ["payload"]}}
    )
    assert sub.status_code == 200, sub.text
    tid = sub.json()["tasks"][function_id][0]
    doc = service.call("GET", f"/v2/tasks/{tid}").json()
    assert doc["task_id"] == tid and doc["status"] in ("waiting-for-ep", "running")
