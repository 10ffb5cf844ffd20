"""Our Client and the reference ``globus_compute_sdk.Client`` put the same bytes on the wire.

Both drive the same fake service; for each call we compare method, URL, headers (all but the
User-Agent, which names our package too) and the raw body.
"""

from __future__ import annotations

import json

import globus_sdk
import pytest
import responses

from globus_compute.client import Client

reference = pytest.importorskip("globus_compute_sdk", reason="needs globus-compute-sdk 4.19.0")

BASE = "https://compute.test"
EP = "11111111-1111-1111-1111-111111111111"
FN = "22222222-2222-2222-2222-222222222222"
TASK = "44444444-4444-4444-4444-444444444444"
GROUP = "55555555-5555-5555-5555-555555555555"


def add(x, y=1):
    """Add two numbers."""
    return x + y


def fake_service(rsps: responses.RequestsMock) -> None:
    version = {"min_sdk_version": "1.0.0", "min_ep_version": "1.0.0"}
    submit = {"request_id": "r", "task_group_id": GROUP, "endpoint_id": EP, "tasks": {FN: [TASK]}}
    task = {"task_id": TASK, "status": "running"}
    rsps.get(f"{BASE}/v2/version", json=version)
    rsps.post(f"{BASE}/v3/functions", json={"function_uuid": FN})
    rsps.post(f"{BASE}/v3/endpoints/{EP}/submit", json=submit)
    rsps.get(f"{BASE}/v2/tasks/{TASK}", json=task)
    rsps.post(f"{BASE}/v2/batch_status", json={"response": "batch", "results": {TASK: task}})
    rsps.get(f"{BASE}/v2/functions/{FN}", json={"function_uuid": FN})
    rsps.delete(f"{BASE}/v2/functions/{FN}", json={"result": 302})
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", json={"status": "online"})
    rsps.get(f"{BASE}/v2/endpoints/{EP}", json={"uuid": EP})
    rsps.get(f"{BASE}/v2/endpoints", json=[])
    rsps.get(f"{BASE}/v3/endpoints/{EP}/allowed_functions", json={"restricted": False})
    rsps.post(f"{BASE}/v3/endpoints/{EP}/lock", json={"endpoint_id": EP})
    rsps.delete(f"{BASE}/v2/endpoints/{EP}", json={"result": 302})
    rsps.post(f"{BASE}/v3/endpoints", json={"endpoint_id": EP})


def exercise(client) -> None:
    client.version_check()
    client.register_function(add, public=True, group=GROUP)
    client.register_function(add, description="explicit")
    client.register_source_code("def f(x):\n    return x\n", "f")
    client.run(3, endpoint_id=EP, function_id=FN, y=4)
    batch = client.create_batch(resource_specification={"num_nodes": 2})
    batch.add(FN, args=[1, 2])
    batch.add(FN, kwargs={"y": "a"})
    client.batch_run(EP, batch)
    client.get_task(TASK)
    client.get_batch_result([TASK])
    client.get_function(FN)
    client.delete_function(FN)
    client.get_endpoint_status(EP)
    client.get_endpoint_metadata(EP)
    client.get_endpoints()
    client.get_endpoints(role="any")
    client.get_allowed_functions(EP)
    client.stop_endpoint(EP)
    client.delete_endpoint(EP)
    client.register_endpoint("ep", None, metadata={"k": 1}, display_name="d", public=True)


def recorded(make_client) -> list[tuple]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake_service(rsps)
        exercise(make_client())
        calls = []
        for call in rsps.calls:
            req = call.request
            headers = {k: v for k, v in req.headers.items() if k != "User-Agent"}
            calls.append((req.method, req.url, headers, req.body))
        return calls


def test_every_call_matches_the_reference_byte_for_byte():
    def ours():
        return Client(base_url=BASE, authorizer=globus_sdk.AccessTokenAuthorizer("t"))

    def theirs():
        client = reference.Client(authorizer=globus_sdk.AccessTokenAuthorizer("t"))
        client._compute_web_client.v2.base_url = BASE
        client._compute_web_client.v3.base_url = BASE
        return client

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # The reference's constructor version check goes to production; answer it there.
        rsps.get(
            "https://compute.api.globus.org/v2/version",
            json={"min_sdk_version": "1"} | {"min_ep_version": "1"},
        )
        reference_client = theirs()

    our_calls = recorded(ours)
    their_calls = recorded(lambda: reference_client)
    # Our constructor's version check is the extra first call; the reference made it earlier.
    assert our_calls[0][1] == f"{BASE}/v2/version?service=all"
    our_calls = our_calls[1:]
    assert len(their_calls) == 19
    assert [c[:2] for c in our_calls] == [c[:2] for c in their_calls]
    for ours_call, theirs_call in zip(our_calls, their_calls, strict=True):
        assert ours_call[2] == theirs_call[2], ours_call[:2]
        assert ours_call[3] == theirs_call[3], (ours_call[:2], ours_call[3], theirs_call[3])


def test_user_agent_keeps_the_reference_segment():
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/v2/endpoints", json=[])
        client = Client(
            base_url=BASE, authorizer=globus_sdk.AccessTokenAuthorizer("t"), do_version_check=False
        )
        client.get_endpoints()
        agent = rsps.calls[0].request.headers["User-Agent"]
    assert agent.startswith("globus-sdk-py-")
    assert agent.endswith("/globus-compute-sdk-4.19.0")
    assert json.dumps(agent)  # plain ASCII
