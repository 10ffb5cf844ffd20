"""Request limits over real HTTP: agent routes are not charged to their owner's budget."""

from __future__ import annotations

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX

pytestmark = pytest.mark.integration


def test_rate_limit_spares_agent_routes_but_not_user_routes(service_factory) -> None:
    svc = service_factory("--rate-limit", "1")
    with requests.Session() as http:
        http.headers.update(svc.headers)
        reg = http.post(f"{svc.url}/v3/endpoints", json={"endpoint_name": "rl"}, timeout=10)
        assert reg.status_code == 200, reg.text
        endpoint_id = reg.json()["endpoint_id"]
        beat = {
            "status": {
                "total_workers": 1,
                "idle_workers": 1,
                "pending_tasks": 0,
                "outstanding_tasks": 0,
                "managers": 1,
            }
        }
        agent_codes = [
            http.post(
                f"{svc.url}{AGENT_PREFIX}/{endpoint_id}/heartbeat", json=beat, timeout=10
            ).status_code
            for _ in range(40)
        ]
        user_codes = [
            http.get(f"{svc.url}/v2/endpoints/{endpoint_id}", timeout=10).status_code
            for _ in range(40)
        ]
    assert agent_codes == [200] * 40
    assert 429 in user_codes


def test_agent_results_accept_bodies_over_the_user_limit(service_factory) -> None:
    """One result may be as large as the 10 MiB result limit, plus its JSON envelope."""
    svc = service_factory()
    big = "x" * (11 * 1024 * 1024)
    with requests.Session() as http:
        http.headers.update(svc.headers)
        reg = http.post(f"{svc.url}/v3/endpoints", json={"endpoint_name": "big"}, timeout=10)
        endpoint_id = reg.json()["endpoint_id"]
        user = http.post(f"{svc.url}/v3/functions", data=big, timeout=30)
        agent = http.post(
            f"{svc.url}{AGENT_PREFIX}/{endpoint_id}/results",
            json={
                "results": [
                    {
                        "task_id": "00000000-0000-0000-0000-000000000000",
                        "status": "success",
                        "result": big,
                        "completion_t": "1.0",
                    }
                ]
            },
            timeout=30,
        )
    assert user.status_code == 413
    assert user.json()["code"] == "TASK_PAYLOAD_TOO_LARGE"
    assert agent.status_code == 200, agent.text[:300]
    assert agent.json()["ignored"] == 1  # an unknown task id: ignored, not an error
