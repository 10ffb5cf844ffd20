"""Client methods against a fake transport: exact requests out, parsed answers back."""

from __future__ import annotations

import json
import platform
import uuid
import warnings

import globus_sdk
import pytest
from responses import matchers

from globus_compute.client import Client
from globus_compute.errors import VersionMismatch
from globus_compute.serialize import ComputeSerializer, pack_buffers, unpack_buffers
from tests.support.clients import BASE, TOKEN

EP = "11111111-1111-1111-1111-111111111111"
FN = "22222222-2222-2222-2222-222222222222"
TG = "33333333-3333-3333-3333-333333333333"
TASK = "44444444-4444-4444-4444-444444444444"
GROUP = "55555555-5555-5555-5555-555555555555"


def body_of(call) -> dict:
    return json.loads(call.request.body)


def add(x, y=1):
    """Add two numbers."""
    return x + y


def no_doc():
    return 1


# -- transport basics ---------------------------------------------------------------------------


def test_version_check_runs_at_construction_with_headers(rsps):
    rsps.get(
        f"{BASE}/v2/version",
        json={"min_sdk_version": "1.0.0", "min_ep_version": "1.0.0"},
        match=[matchers.query_param_matcher({"service": "all"})],
    )
    Client(base_url=BASE, authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN))
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/json"
    segments = headers["User-Agent"].split("/")
    assert segments[0] == f"globus-sdk-py-{globus_sdk.__version__}"
    assert "globus-compute-0.1.0" in segments
    assert "globus-compute-sdk-4.19.0" in segments


def test_version_check_raises_when_service_needs_newer_sdk(rsps, client):
    rsps.get(f"{BASE}/v2/version", json={"min_sdk_version": "9.0.0", "min_ep_version": "1"})
    with pytest.raises(VersionMismatch, match="globus-compute-sdk: 9.0.0"):
        client.version_check()


@pytest.mark.parametrize("key", ["min_ep_version", "min_endpoint_version"])
def test_version_check_reads_either_endpoint_key(rsps, client, key):
    rsps.get(f"{BASE}/v2/version", json={"min_sdk_version": "1.0.0", key: "3.0.0"})
    rsps.get(f"{BASE}/v2/version", json={"min_sdk_version": "1.0.0", key: "3.0.0"})
    client.version_check(endpoint_version="3.1.0")
    with pytest.raises(VersionMismatch, match="globus-compute-endpoint"):
        client.version_check(endpoint_version="2.9.9")


def test_version_check_skips_dev_builds_and_missing_keys(rsps, client):
    rsps.get(f"{BASE}/v2/version", json={"api": "1.0"})
    rsps.get(f"{BASE}/v2/version", json={"min_sdk_version": "1.0", "min_ep_version": "5.0.0"})
    client.version_check(endpoint_version="1.0.0")
    client.version_check(endpoint_version="4.0.0.dev3")


def test_unknown_kwargs_warn_not_fail(rsps):
    with pytest.warns(UserWarning, match="'force_login' argument is unrecognized"):
        c = Client(
            base_url=BASE,
            authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN),
            do_version_check=False,
            force_login=True,
        )
    assert c.service_url == BASE == c.web_service_address


# -- functions ----------------------------------------------------------------------------------


def test_register_function_body(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    assert client.register_function(add, public=True, group=GROUP.upper()) == FN
    body = body_of(rsps.calls[0])
    assert list(body) == [
        "function_name",
        "function_code",
        "serialized",
        "meta",
        "description",
        "public",
        "group",
    ]
    assert body["function_name"] == "add"
    assert body["serialized"] is True
    assert body["meta"] == {
        "python_version": platform.python_version(),
        "sdk_version": "4.19.0",
        "serde_identifier": "01",
    }
    assert body["description"] == "Add two numbers."
    assert body["public"] is True
    assert body["group"] == GROUP
    [code] = unpack_buffers(body["function_code"])
    assert code.startswith("01\n")
    assert ComputeSerializer().deserialize(code)(2, y=3) == 5
    assert rsps.calls[0].request.headers["Content-Type"] == "application/json"


def test_register_function_description_argument_wins_and_absent_without_doc(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    client.register_function(add, description="explicit")
    client.register_function(no_doc)
    first, second = (body_of(c) for c in rsps.calls)
    assert first["description"] == "explicit"
    assert "description" not in second and "public" not in second and "group" not in second


def test_register_function_ha_warning_becomes_user_warning(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN, "ha_warning": "HA notice"})
    with pytest.warns(UserWarning, match="HA notice"):
        client.register_function(add, ha_endpoint_id=EP)
    assert body_of(rsps.calls[0])["ha_endpoint_id"] == EP


def test_register_function_rejects_bad_combinations_before_any_request(rsps, client):
    with pytest.raises(ValueError, match="mutually exclusive"):
        client.register_function(add, public=True, ha_endpoint_id=EP)
    with pytest.raises(ValueError, match="metadata"):
        client.register_function(add, metadata={"python_version": "3.9"})
    with pytest.raises(ValueError, match="group: badly formed hexadecimal UUID string"):
        client.register_function(add, group="not-a-group")
    assert len(rsps.calls) == 0


def test_register_source_code_sends_raw_source(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    source = "def f(x):\n    return x\n"
    assert client.register_source_code(source, "f") == FN
    assert body_of(rsps.calls[0]) == {
        "function_name": "f",
        "function_code": source,
        "serialized": False,
        "meta": {"python_version": platform.python_version(), "sdk_version": "4.19.0"},
    }


def test_get_and_delete_function(rsps, client):
    doc = {"function_uuid": FN, "function_name": "add", "function_code": "x", "description": "d"}
    rsps.get(f"{BASE}/v2/functions/{FN}", json=doc)
    rsps.delete(f"{BASE}/v2/functions/{FN}", json={"result": 302})
    assert client.get_function(uuid.UUID(FN)) == doc
    resp = client.delete_function(FN.upper())
    assert resp["result"] == 302 and resp.http_status == 200
    assert rsps.calls[1].request.headers["Content-Length"] == "0"


# -- submission ---------------------------------------------------------------------------------


def submit_response(tasks: dict, **extra) -> dict:
    return {"request_id": "r", "task_group_id": TG, "endpoint_id": EP, "tasks": tasks, **extra}


def test_run_sends_one_task_and_canonicalizes_function_key(rsps, client):
    rsps.post(f"{BASE}/v3/endpoints/{EP}/submit", json=submit_response({FN: [TASK]}))
    # The reference indexes the response with the caller's string and raises KeyError here.
    assert client.run(1, endpoint_id=EP.upper(), function_id=FN.upper(), y=2) == TASK
    body = body_of(rsps.calls[0])
    assert body["create_queue"] is False
    assert list(body["tasks"]) == [FN]
    [payload] = body["tasks"][FN]
    serializer = ComputeSerializer()
    args, kwargs = (serializer.deserialize(b) for b in unpack_buffers(payload))
    assert (args, kwargs) == ((1,), {"y": 2})
    assert body["user_runtime"]["globus_compute_sdk_version"] == "4.19.0"
    assert "task_group_id" not in body


def test_batch_run_body_and_response(rsps, client):
    answer = submit_response({FN: ["t1", "t2"]}, ha_warning="careful")
    rsps.post(f"{BASE}/v3/endpoints/{EP}/submit", json=answer)
    batch = client.create_batch(
        task_group_id=TG,
        resource_specification={"num_nodes": 2},
        user_endpoint_config={"worker_init": "x"},
    )
    batch.add(FN, args=(3, 4), kwargs={"noise": 0})
    batch.add(FN)
    with pytest.warns(UserWarning, match="careful"):
        assert client.batch_run(EP, batch) == answer
    body = body_of(rsps.calls[0])
    assert list(body) == [
        "create_queue",
        "tasks",
        "task_group_id",
        "resource_specification",
        "user_endpoint_config",
        "user_runtime",
    ]
    assert body["task_group_id"] == TG
    assert len(body["tasks"][FN]) == 2


def test_batch_run_rejects_empty_batch(rsps, client):
    with pytest.raises(ValueError, match="No tasks"):
        client.batch_run(EP, client.create_batch())
    assert len(rsps.calls) == 0


def test_create_batch_passes_result_serializers(client):
    batch = client.create_batch(result_serializers=["globus_compute_sdk.serialize.JSONData"])
    batch.add(FN)
    assert batch.prepare()["result_serializers"] == ["globus_compute_sdk.serialize.JSONData"]


def test_get_worker_hardware_details_registers_source_and_runs(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    rsps.post(f"{BASE}/v3/endpoints/{EP}/submit", json=submit_response({FN: [TASK]}))
    assert client.get_worker_hardware_details(EP) == TASK
    reg = body_of(rsps.calls[0])
    assert reg["function_name"] == "run_hardware_report"
    assert reg["meta"]["serde_identifier"] == "st"
    [code] = unpack_buffers(reg["function_code"])
    report = ComputeSerializer().deserialize(code)()  # runs standalone, as on an endpoint
    assert "== python ==" in report and platform.python_version() in report


# -- endpoints ----------------------------------------------------------------------------------


def test_endpoint_reads(rsps, client):
    status = {"status": "online", "details": {"total_workers": 2}}
    meta = {"uuid": EP, "name": "local"}
    allowed = {"endpoint_id": EP, "restricted": False}
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", json=status)
    rsps.get(f"{BASE}/v2/endpoints/{EP}", json=meta)
    rsps.get(f"{BASE}/v2/endpoints", json=[meta], match=[matchers.query_string_matcher("")])
    rsps.get(f"{BASE}/v2/endpoints", json=[meta], match=[matchers.query_string_matcher("role=any")])
    rsps.get(f"{BASE}/v3/endpoints/{EP}/allowed_functions", json=allowed)
    assert client.get_endpoint_status(EP) == status
    assert client.get_endpoint_metadata(EP) == meta
    assert client.get_endpoints() == [meta]
    assert client.get_endpoints(role="any") == [meta]
    assert client.get_allowed_functions(EP) == allowed


def test_endpoint_writes_return_raw_responses(rsps, client):
    rsps.post(
        f"{BASE}/v3/endpoints/{EP}/lock", json={"endpoint_id": EP, "lock_expiration_timestamp": 1.5}
    )
    rsps.delete(f"{BASE}/v2/endpoints/{EP}", json={"result": 302})
    assert client.stop_endpoint(EP)["lock_expiration_timestamp"] == 1.5
    assert client.delete_endpoint(EP).http_status == 200


def test_register_endpoint_new_and_update(rsps, client):
    version = {"min_sdk_version": "1.0.0", "min_ep_version": "1.0.0"}
    answer = {"endpoint_id": EP}
    rsps.get(f"{BASE}/v2/version", json=version)
    rsps.post(f"{BASE}/v3/endpoints", json=answer)
    rsps.get(f"{BASE}/v2/version", json=version)
    rsps.put(f"{BASE}/v3/endpoints/{EP}", json=answer)
    assert client.register_endpoint("ep", None, metadata={"k": 1}, public=False) == answer
    assert (
        client.register_endpoint("ep", EP, display_name="Mine", admins=[uuid.UUID(GROUP)]) == answer
    )
    assert body_of(rsps.calls[1]) == {"endpoint_name": "ep", "metadata": {"k": 1}, "public": False}
    assert body_of(rsps.calls[3]) == {
        "endpoint_name": "ep",
        "display_name": "Mine",
        "admins": [GROUP],
    }


def test_bad_uuid_raises_before_any_request(rsps, client):
    for call in (
        lambda: client.get_function("nope"),
        lambda: client.get_endpoint_status("nope"),
        lambda: client.get_task("nope"),
        lambda: client.get_batch_result([TASK, "nope"]),
        lambda: client.run(endpoint_id="nope", function_id=FN),
        lambda: client.run(endpoint_id=EP, function_id="nope"),
    ):
        with pytest.raises(ValueError):
            call()
    assert len(rsps.calls) == 0


def test_logout_with_authorizer_is_a_logged_no_op(client, caplog):
    client.logout()
    assert "not supported" in caplog.text


def test_concurrent_calls_do_not_block_each_other(rsps, client):
    """Two threads share one Client (the Executor's submitter and poller); both complete."""
    import threading

    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", json={"status": "online"})
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.get_endpoint_status(EP)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [{"status": "online"}] * 8


def test_ha_warning_absent_emits_nothing(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.register_function(add)


def test_pack_buffers_round_trip_matches_body(rsps, client):
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    client.register_function(add)
    code = body_of(rsps.calls[0])["function_code"]
    assert code == pack_buffers(unpack_buffers(code))
