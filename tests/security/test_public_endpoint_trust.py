"""A public endpoint is a trust in both directions (issue 15).

Why: the owner of a public endpoint runs code chosen by every submitter, and every submitter
deserializes results chosen by the endpoint's owner. Both directions are attacked here with a
crafted pickle whose loading creates a marker file (what ``id`` or worse would do):

- a submitter sends the crafted pickle as an *argument* to an endpoint that accepts only JSON
  arguments (``allowed_serializers``): it fails its task without being loaded;
- an endpoint owner (mallory, acting as her own agent through the real agent routes) answers
  alice's task with a crafted *result*: alice's ``future.result()`` refuses to load it, unless
  alice opted in with ``Client(trust_foreign_results=True)``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from globus_compute import Client, Executor
from globus_compute.errors import TaskExecutionFailed, UntrustedResult
from globus_compute.local import LocalCompute
from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.serialize import ComputeSerializer, JSONData
from tests.support.service import Identities, RunningService, create_identities, start_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SER = ComputeSerializer()
JSON_ARGS_ONLY = ["globus_compute_sdk.*Code", "globus_compute_sdk.serialize.JSONData"]


class Crafted:
    """Loading this creates ``path``: any code could run instead."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


# -- the endpoint's side: allowed_serializers -------------------------------------------------


@pytest.mark.parametrize("engine", ["process", "thread"])
def test_endpoint_with_json_only_arguments_never_loads_a_pickled_argument(
    tmp_path: Path, engine: str
) -> None:
    """Regression (issue 15): ``allowed_functions`` was no boundary: a crafted argument pickle
    to the one allowed function ran arbitrary code on the endpoint, and nothing let its owner
    restrict the deserializers."""
    marker = tmp_path / "endpoint-pwned"

    def add(a: int, b: int) -> int:
        return a + b

    with LocalCompute(workers=1, engine=engine, allowed_serializers=JSON_ARGS_ONLY) as local:
        assert local.endpoint_id and local.socket_url and local.token
        dill_client = local.client()
        function_id = dill_client.register_function(add)
        crafted = dill_client.run(Crafted(marker), 1, endpoint_id=local.endpoint_id,
                                  function_id=function_id)  # fmt: skip
        with pytest.raises(TaskExecutionFailed) as refused:
            dill_client.get_result(crafted, timeout=60)
        json_client = Client(
            base_url=local.socket_url,
            authorizer=globus_sdk.AccessTokenAuthorizer(local.token),
            data_serialization_strategy=JSONData(),
        )
        fine = json_client.run(2, 3, endpoint_id=local.endpoint_id, function_id=function_id)
        assert json_client.get_result(fine, timeout=60) == 5
    text = str(refused.value)
    assert "Data serializer DillDataBase64 disabled by current configuration" in text
    assert "Allowed serializers:" in text and "JSONData" in text
    assert not marker.exists()


# -- the submitter's side: results of endpoints one does not own ------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    svc = start_service(tmp_path / "state")
    yield svc
    svc.stop()


@pytest.fixture
def who(service: RunningService) -> Identities:
    return create_identities(service)


def _endpoint(service: RunningService, token: str, name: str, public: bool) -> str:
    resp = service.call("POST", "/v3/endpoints", token=token,
                        json={"endpoint_name": name, "public": public})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json()["endpoint_id"])


def _answer_as_agent(service: RunningService, token: str, endpoint_id: str, result: str) -> str:
    """Claim the next task of ``endpoint_id`` as its owner's agent and answer ``result``."""
    base = f"{AGENT_PREFIX}/{endpoint_id}"
    deadline = time.monotonic() + 60
    tasks: list[dict[str, Any]] = []
    while not tasks and time.monotonic() < deadline:
        claim = service.call("POST", f"{base}/claim", token=token,
                             json={"max_tasks": 1, "wait_s": 5})  # fmt: skip
        assert claim.status_code == 200, claim.text
        tasks = claim.json()["tasks"]
    assert tasks, "no task arrived"
    task_id = str(tasks[0]["task_id"])
    # The agent may claim any endpoint id in its details; the service writes its own.
    report = {"task_id": task_id, "status": "success", "result": result, "completion_t": "1",
              "details": {"endpoint_id": "not-this-one"}}  # fmt: skip
    posted = service.call("POST", f"{base}/results", token=token, json={"results": [report]})
    assert posted.status_code == 200, posted.text
    return task_id


def _client(service: RunningService, token: str, **kwargs: Any) -> Client:
    return Client(
        base_url=service.url, authorizer=globus_sdk.AccessTokenAuthorizer(token), **kwargs
    )


def test_crafted_result_of_a_foreign_public_endpoint_is_not_unpickled(
    service: RunningService, who: Identities, tmp_path: Path
) -> None:
    """Regression (issue 15): a crafted result pickle from mallory's public endpoint ran code in
    alice's process when she called ``fut.result()``."""
    marker = tmp_path / "submitter-pwned"
    public = _endpoint(service, who.mallory, "free-compute", public=True)
    with Executor(endpoint_id=public, client=_client(service, who.alice)) as ex:
        future = ex.submit(pow, 2, 3)
        task_id = _answer_as_agent(service, who.mallory, public, SER.serialize(Crafted(marker)))
        with pytest.raises(UntrustedResult, match=f"endpoint {public}, which you do not own"):
            future.result(timeout=60)
        assert future.task_id == task_id
        # JSON results are data, and are read from any endpoint.
        as_json = ex.submit(pow, 2, 3)
        _answer_as_agent(service, who.mallory, public, "11\n8")
        assert as_json.result(timeout=60) == 8
    assert not marker.exists()
    # The documented opt-in reads it, and shows what the default protects from.
    trusting = _client(service, who.alice, trust_foreign_results=True)
    trusting.get_result(task_id)
    assert marker.exists()


def test_dill_results_of_ones_own_endpoints_are_read_as_before(
    service: RunningService, who: Identities
) -> None:
    own = _endpoint(service, who.alice, "mine", public=False)
    with Executor(endpoint_id=own, client=_client(service, who.alice)) as ex:
        future = ex.submit(pow, 2, 3)
        _answer_as_agent(service, who.alice, own, SER.serialize({"answer": 8}))
        assert future.result(timeout=60) == {"answer": 8}
