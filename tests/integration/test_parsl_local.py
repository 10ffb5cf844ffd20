"""The whole stack with ``--engine parsl``: service, agent, HTEX workers, Executor and Client."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("parsl")
pytest.importorskip("yaml")

from globus_compute import ComputeSerializer, DillCodeSource  # noqa: E402
from globus_compute.errors import TaskExecutionFailed  # noqa: E402
from globus_compute.local import LocalCompute  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(180)]

# HTEX workers are fresh interpreters that cannot import this test module: ship source text.
SOURCE_SERIALIZER = ComputeSerializer(strategy_code=DillCodeSource())


def add(a, b):
    return a + b


def fails():
    raise KeyError("missing")


def kill_own_worker():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def parsl_priority():
    import os

    return os.environ.get("PARSL_PRIORITY")


@pytest.fixture(scope="module")
def local():
    with LocalCompute(workers=2, engine="parsl") as running:
        yield running


def test_executor_runs_tasks_on_htex(local):
    with local.executor(serializer=SOURCE_SERIALIZER) as ex:
        futures = [ex.submit(add, i, 1) for i in range(50)]
        assert [f.result(timeout=60) for f in futures] == list(range(1, 51))
        with pytest.raises(TaskExecutionFailed, match="KeyError: 'missing'"):
            ex.submit(fails).result(timeout=60)


def test_resource_specification_through_the_service(local):
    with local.executor(serializer=SOURCE_SERIALIZER) as ex:
        ex.resource_specification = {"priority": 3}
        assert ex.submit(parsl_priority).result(timeout=60) == "3"
        ex.resource_specification = {"num_ranks": 4}
        with pytest.raises(TaskExecutionFailed, match="InvalidResourceSpecification"):
            ex.submit(parsl_priority).result(timeout=60)


def test_killed_worker_is_reported_lost(local):
    with local.executor(serializer=SOURCE_SERIALIZER) as ex:
        with pytest.raises(TaskExecutionFailed) as info:
            ex.submit(kill_own_worker).result(timeout=90)
        # Parsl's exception names the class the way the reference endpoint reports it, and the
        # SDK adds its worker-lost hint.
        assert "parsl.executors.high_throughput.errors.WorkerLost:" in info.value.remote_data
        assert "A worker process died" in str(info.value)
        # The pool replaced the worker; the endpoint keeps serving.
        assert ex.submit(add, 2, 3).result(timeout=60) == 5


def test_endpoint_status_shows_parsl_workers(local):
    client = local.client()

    def details() -> dict:
        return client.get_endpoint_status(local.endpoint_id).get("details") or {}

    deadline = time.monotonic() + 30
    while details().get("managers") != 1 and time.monotonic() < deadline:
        threading.Event().wait(0.2)  # the agent heartbeats every few seconds
    status = client.get_endpoint_status(local.endpoint_id)
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == 2
    assert status["details"]["managers"] == 1


def test_local_compute_passes_an_endpoint_config_to_the_agent():
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "examples" / "endpoint_config_local.yaml"
    with LocalCompute(workers=2, engine="parsl", endpoint_config=config) as stack:
        client = stack.client()
        metadata = client.get_endpoint_metadata(stack.endpoint_id)
        with stack.executor(serializer=SOURCE_SERIALIZER) as ex:
            assert ex.submit(add, 2, 3).result(timeout=120) == 5
    assert metadata["uuid"] == stack.endpoint_id
    assert metadata["display_name"] == "Parsl on this machine"  # read from the config file
