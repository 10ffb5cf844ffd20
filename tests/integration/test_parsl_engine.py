"""The parsl engine on a real HighThroughputExecutor: LocalProvider, two real HTEX workers.

One engine serves the whole module (HTEX takes seconds to start). It allows one retry after a
system failure, so the worker-loss tests can show both the retry and the final failure text.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

import pytest

pytest.importorskip("parsl")
pytest.importorskip("yaml")

from globus_compute.endpoint.config import parse_endpoint_config  # noqa: E402
from globus_compute.endpoint.engines.base import EngineContext  # noqa: E402
from globus_compute.endpoint.engines.parsl_engine import ParslEngine  # noqa: E402
from globus_compute.endpoint.execution import TaskRunner  # noqa: E402
from globus_compute.serialize import ComputeSerializer, DillCodeSource  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(180)]

SER = ComputeSerializer(strategy_code=DillCodeSource())
EP_ID = "55555555-5555-5555-5555-555555555555"

CONFIG = """
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 2
  heartbeat_period: 1
  heartbeat_threshold: 10
  max_retries_on_system_failure: 1
  provider:
    type: LocalProvider
    init_blocks: 1
    min_blocks: 1
    max_blocks: 1
"""


# Task functions travel as source text (DillCodeSource): HTEX workers are fresh interpreters
# that cannot import this test module, so a by-reference pickle would not load there.


def square(x):
    return x * x


def divide(a, b):
    return a / b


def parsl_env(name):
    import os

    return os.environ.get(name)


def kill_own_worker():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def kill_worker_unless_marker(path):
    import os
    import signal

    if not os.path.exists(path):
        open(path, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "second try"


def wait_for_file(path, timeout):
    import os
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.path.exists(path)


def make_task(fn, *args, attempt: int = 1, **fields) -> dict:
    buffer = SER.pack_buffers([SER.serialize(fn)]) + SER.pack_buffers(
        [SER.serialize(args), SER.serialize({})]
    )
    task = {
        "task_id": str(uuid.uuid4()),
        "function_id": "f",
        "task_buffer": buffer,
        "result_serializers": None,
        "resource_specification": None,
        "user_endpoint_config": None,
        "attempt": attempt,
    }
    task.update(fields)
    return task


class Collector:
    """The engine's result sink: remembers every result and every batch size."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.batches: list[int] = []
        self.duplicates: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, batch: list[dict]) -> None:
        with self._cond:
            self.batches.append(len(batch))
            for result in batch:
                if result["task_id"] in self.results:
                    self.duplicates.append(result["task_id"])
                self.results[result["task_id"]] = result
            self._cond.notify_all()

    def wait(self, tasks: Iterable[dict], timeout: float = 60.0) -> list[dict]:
        ids = [t["task_id"] for t in tasks]
        with self._cond:
            done = self._cond.wait_for(lambda: all(i in self.results for i in ids), timeout)
            assert done, f"{sum(i not in self.results for i in ids)} results missing"
            return [self.results[i] for i in ids]


@pytest.fixture(scope="module")
def engine_and_sink():
    sink = Collector()
    engine = ParslEngine(2, config=parse_endpoint_config(CONFIG, source="test"))
    engine.start(EngineContext(EP_ID, sink, max_retries_on_system_failure=0))
    yield engine, sink
    engine.shutdown()


def poll(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        threading.Event().wait(interval)


def test_tasks_run_end_to_end_in_batches(engine_and_sink):
    engine, sink = engine_and_sink
    tasks = [make_task(square, i) for i in range(40)]
    engine.submit(tasks)
    results = sink.wait(tasks)
    assert [SER.deserialize(r["result"]) for r in results] == [i * i for i in range(40)]
    assert all(r["status"] == "success" for r in results)
    assert results[0]["details"]["endpoint_id"] == EP_ID
    assert not sink.duplicates
    assert len(sink.batches) < len(sink.results)  # results left in batches, not one by one


def test_failure_text_is_the_process_engines(engine_and_sink):
    engine, sink = engine_and_sink
    task = make_task(divide, 1, 0)
    engine.submit([task])
    (result,) = sink.wait([task])
    expected = TaskRunner(EP_ID).run(task)["exception"]
    assert result["status"] == "failed"
    assert result["exception"] == expected
    assert "ZeroDivisionError: division by zero" in expected


def test_resource_specification_reaches_the_htex_worker(engine_and_sink):
    engine, sink = engine_and_sink
    task = make_task(parsl_env, "PARSL_PRIORITY", resource_specification={"priority": 7})
    engine.submit([task])
    (result,) = sink.wait([task])
    assert SER.deserialize(result["result"]) == "7"  # HTEX exports each spec key to the task


def test_unsupported_resource_specification_fails_alone(engine_and_sink):
    engine, sink = engine_and_sink
    bad = make_task(square, 3, resource_specification={"num_nodes": 2})
    good = make_task(square, 4)
    engine.submit([bad, good])
    bad_result, good_result = sink.wait([bad, good])
    assert bad_result["status"] == "failed"
    assert "resource_specification {'num_nodes': 2} is not supported" in bad_result["exception"]
    assert "InvalidResourceSpecification" in bad_result["exception"]
    assert "priority" in bad_result["exception"]  # Parsl names what HTEX accepts
    assert SER.deserialize(good_result["result"]) == 16


def test_user_endpoint_config_is_refused(engine_and_sink):
    engine, sink = engine_and_sink
    task = make_task(square, 2, user_endpoint_config={"account": "abc"})
    engine.submit([task])
    (result,) = sink.wait([task])
    assert result["status"] == "failed"
    assert "user_endpoint_config" in result["exception"]
    assert "single-user" in result["exception"]


def test_killed_worker_is_retried_then_reported_lost(engine_and_sink, tmp_path):
    engine, sink = engine_and_sink
    recovers = make_task(kill_worker_unless_marker, str(tmp_path / "marker"))
    always_dies = make_task(kill_own_worker)
    engine.submit([recovers, always_dies])
    recovered, lost = sink.wait([recovers, always_dies], timeout=90)

    assert SER.deserialize(recovered["result"]) == "second try"
    assert lost["status"] == "failed"
    text = lost["exception"]
    assert (
        text.count(
            "parsl.executors.high_throughput.errors.WorkerLost: Task failure due to loss of worker"
        )
        == 2
    )
    assert "Traceback from attempt: 1" in text
    assert "Traceback from attempt: final attempt" in text
    assert text.startswith("+" * 68)


def test_earlier_endpoint_loss_uses_up_the_retry(engine_and_sink):
    engine, sink = engine_and_sink
    task = make_task(kill_own_worker, attempt=2)  # the service already ran it once
    engine.submit([task])
    (result,) = sink.wait([task], timeout=60)
    assert result["exception"].count("WorkerLost:") == 1


def test_status_reports_htex_workers(engine_and_sink, tmp_path):
    engine, sink = engine_and_sink
    assert poll(lambda: engine.status()["idle_workers"] == 2)
    status = engine.status()
    assert status["total_workers"] == 2
    assert status["managers"] == 1  # one block
    assert status["outstanding_tasks"] == 0

    release = tmp_path / "release"
    tasks = [make_task(wait_for_file, str(release), 60) for _ in range(3)]
    engine.submit(tasks)
    busy = poll(lambda: (s := engine.status())["idle_workers"] == 0 and s["pending_tasks"] and s)
    assert busy, engine.status()
    assert busy["outstanding_tasks"] == 3
    assert busy["pending_tasks"] == 1
    release.touch()
    assert all(SER.deserialize(r["result"]) for r in sink.wait(tasks))
    assert poll(lambda: engine.status()["outstanding_tasks"] == 0)


def test_blocks_start_on_demand_when_none_run_at_first():
    """With init_blocks 0 the engine still offers a block's worker slots, so tasks get claimed
    and Parsl's strategy starts a block for them (else an idle cluster endpoint never wakes up);
    its status reports only the workers that really exist."""
    config = parse_endpoint_config(
        "engine:\n  max_workers_per_node: 2\n  strategy_period: 0.5\n  heartbeat_period: 1\n"
        "  provider:\n    type: LocalProvider\n    init_blocks: 0\n    min_blocks: 0\n"
        "    max_blocks: 1\n",
        source="on-demand",
    )
    sink = Collector()
    engine = ParslEngine(2, config=config)
    engine.start(EngineContext(EP_ID, sink))
    try:
        assert engine.worker_slots() == 2  # one block the provider can start
        before = engine.status()
        assert before["total_workers"] == 0
        assert before["idle_workers"] == 0 and before["managers"] == 0
        task = make_task(square, 9)
        engine.submit([task])
        (result,) = sink.wait([task], timeout=90)
        assert SER.deserialize(result["result"]) == 81
        assert poll(lambda: engine.status()["managers"] == 1)
        assert engine.status()["total_workers"] == 2
    finally:
        engine.shutdown()


def test_mpi_mode_turns_the_specification_into_a_launch_prefix(tmp_path):
    """GlobusMPIEngine (Parsl's MPIExecutor) hands each task its own mpiexec prefix.

    MPI mode reads the block's nodes from the batch job; a PBS node file naming this machine
    stands in for a real allocation.
    """
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    config = parse_endpoint_config(
        "engine:\n  type: GlobusMPIEngine\n  max_workers_per_block: 2\n"
        "  mpi_launcher: mpiexec\n  heartbeat_period: 1\n"
        "  provider:\n    type: LocalProvider\n    launcher: {type: SimpleLauncher}\n"
        f"    worker_init: export PBS_NODEFILE={nodefile}\n",
        source="mpi",
    )
    sink = Collector()
    engine = ParslEngine(2, config=config)
    engine.start(EngineContext(EP_ID, sink))
    try:
        spec = {"num_nodes": 1, "ranks_per_node": 2}
        mpi = make_task(parsl_env, "PARSL_MPI_PREFIX", resource_specification=spec)
        unspecified = make_task(parsl_env, "PARSL_MPI_PREFIX")
        engine.submit([mpi, unspecified])
        mpi_result, refused = sink.wait([mpi, unspecified], timeout=90)
        assert SER.deserialize(mpi_result["result"]).split() == [
            "mpiexec", "-n", "2", "-ppn", "2", "-hosts", "localhost"
        ]  # fmt: skip
        assert refused["status"] == "failed"
        assert "MPI mode requires" in refused["exception"]
    finally:
        engine.shutdown()
