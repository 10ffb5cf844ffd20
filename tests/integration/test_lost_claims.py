"""A claim whose answer never reaches the agent: over real HTTP, the task comes back.

Regression: when the service died after committing a claim but before the agent read the answer,
those tasks stayed leased to a healthy endpoint for ever (every heartbeat renewed every lease)
and their futures never resolved.
"""

from __future__ import annotations

import time

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.serialize import ComputeSerializer, pack_buffers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STATUS = {
    "total_workers": 1,
    "idle_workers": 1,
    "pending_tasks": 0,
    "outstanding_tasks": 0,
    "managers": 1,
}


def test_lost_claim_is_claimable_again_while_the_agent_heartbeats(service_factory) -> None:
    svc = service_factory("--lease-s", "1")
    ser = ComputeSerializer()
    with requests.Session() as http:
        http.headers.update(svc.headers)

        def post(path: str, body: dict) -> dict:
            reply = http.post(svc.url + path, json=body, timeout=10)
            assert reply.status_code == 200, reply.text
            return reply.json()

        endpoint_id = post("/v3/endpoints", {"endpoint_name": "lossy"})["endpoint_id"]
        code = pack_buffers([ser.serialize(abs)])
        function_id = post(
            "/v3/functions",
            {"function_name": "abs", "function_code": code, "meta": {}},
        )["function_uuid"]
        payload = pack_buffers([ser.serialize((-3,)), ser.serialize({})])
        submitted = post(f"/v3/endpoints/{endpoint_id}/submit", {"tasks": {function_id: [payload]}})
        (task_id,) = submitted["tasks"][function_id]
        agent = f"{AGENT_PREFIX}/{endpoint_id}"
        (lost,) = post(f"{agent}/claim", {"max_tasks": 1, "wait_s": 0})["tasks"]
        assert lost["task_id"] == task_id  # this answer is "lost": the agent never learns of it

        deadline = time.monotonic() + 30
        again: list[dict] = []
        while not again:
            assert time.monotonic() < deadline, "the lost claim was never released"
            post(f"{agent}/heartbeat", {"status": STATUS, "held": []})
            again = post(f"{agent}/claim", {"max_tasks": 1, "wait_s": 0.3})["tasks"]
    assert again[0]["task_id"] == task_id
    assert again[0]["attempt"] == 1  # never ran, so no attempt was spent
