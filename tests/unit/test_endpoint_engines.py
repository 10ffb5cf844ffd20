"""Engines run batches of claimed tasks and report each task's result exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from globus_compute.endpoint.engines import EngineContext, ProcessEngine, ThreadEngine
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.serialize import ComputeSerializer

SER = ComputeSerializer()
EP_ID = "55555555-5555-5555-5555-555555555555"


def _functions():
    """Task functions built in a local scope so dill ships them by value to any worker."""

    def square(x):
        return x * x

    def exit_hard(code):
        import os

        os._exit(code)

    def segfault():
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)

    def exit_unless_marker(path):
        import os

        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(7)
        return "second try"

    def logged(path, x, delay=0.0):
        import time

        with open(path, "a") as log:
            log.write(f"{x}\n")
        if delay:
            time.sleep(delay)
        return x

    def raise_base(kind):
        raise SystemExit(3) if kind == "exit" else KeyboardInterrupt()

    return square, exit_hard, segfault, exit_unless_marker, logged, raise_base


square, exit_hard, segfault, exit_unless_marker, logged, raise_base = _functions()


def make_task(task_id: str, fn, *args, attempt: int = 1) -> dict:
    buffer = SER.pack_buffers([SER.serialize(fn)]) + SER.pack_buffers(
        [SER.serialize(args), SER.serialize({})]
    )
    return {
        "task_id": task_id,
        "function_id": "f",
        "task_buffer": buffer,
        "result_serializers": None,
        "resource_specification": None,
        "user_endpoint_config": None,
        "attempt": attempt,
    }


class Collector:
    """A result sink that lets a test wait for a number of results with a deadline."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.batches = 0
        self.duplicates = 0
        self._changed = threading.Condition()

    def __call__(self, batch: list[dict]) -> None:
        with self._changed:
            self.batches += 1
            for result in batch:
                if result["task_id"] in self.results:
                    self.duplicates += 1
                self.results[result["task_id"]] = result
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 60.0) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.results) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self.results)} of {count} results arrived"
                self._changed.wait(remaining)
            return dict(self.results)


@pytest.fixture(params=["process", "thread"])
def engine_name(request):
    return request.param


def start_engine(name: str, workers: int = 2, retries: int = 0, leases_current=lambda: True):
    engine = ProcessEngine(workers) if name == "process" else ThreadEngine(workers)
    sink = Collector()
    context = EngineContext(
        EP_ID, sink, max_retries_on_system_failure=retries, leases_current=leases_current
    )
    engine.start(context)
    return engine, sink


def runs(path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def test_thousand_tasks_all_succeed_in_batches(engine_name):
    engine, sink = start_engine(engine_name)
    try:
        tasks = [make_task(f"t{i}", square, i) for i in range(1000)]
        for start in range(0, 1000, 100):
            engine.submit(tasks[start : start + 100])
        results = sink.wait_for(1000)
        assert all(r["status"] == "success" for r in results.values())
        assert {SER.deserialize(results[f"t{i}"]["result"]) for i in range(1000)} == {
            i * i for i in range(1000)
        }
        assert sink.duplicates == 0
        assert sink.batches < 1000
        deadline = time.monotonic() + 10
        while engine.status()["outstanding_tasks"] and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        status = engine.status()
        assert status["outstanding_tasks"] == 0 and status["total_workers"] == 2
    finally:
        engine.shutdown()


@pytest.mark.parametrize("killer", ["exit", "segfault"])
def test_dying_worker_fails_only_its_task(killer):
    engine, sink = start_engine("process")
    try:
        bad = make_task("bad", exit_hard, 3) if killer == "exit" else make_task("bad", segfault)
        tasks = [make_task(f"t{i}", square, i) for i in range(50)]
        engine.submit(tasks[:20] + [bad] + tasks[20:])
        results = sink.wait_for(51)
        assert results["bad"]["status"] == "failed"
        text = results["bad"]["exception"]
        assert "WorkerLost:" in text and "died" in text
        assert ("exit code 3" in text) if killer == "exit" else ("SIGSEGV" in text)
        assert all(results[f"t{i}"]["status"] == "success" for i in range(50))
        # The replacement worker keeps serving.
        engine.submit([make_task("after", square, 9)])
        assert SER.deserialize(sink.wait_for(52)["after"]["result"]) == 81
        assert engine.status()["total_workers"] == 2
    finally:
        engine.shutdown()


def test_results_a_worker_finished_survive_its_death_and_never_rerun(tmp_path):
    """Regression (issue 14, item 2): a worker batches results for a few milliseconds; when
    it died in that window its finished-but-unsent tasks were requeued and ran twice."""
    engine, sink = start_engine("process", workers=1)
    log = tmp_path / "runs"
    try:
        # One chunk: ten fast tasks whose results wait in the worker, then one that kills it.
        tasks = [make_task(f"t{i}", logged, str(log), i) for i in range(10)]
        engine.submit([*tasks, make_task("bad", exit_hard, 7)])
        results = sink.wait_for(11)
        assert all(results[f"t{i}"]["status"] == "success" for i in range(10))
        assert "WorkerLost" in results["bad"]["exception"]
        assert sorted(runs(log), key=int) == [str(i) for i in range(10)]  # each ran once
    finally:
        engine.shutdown()


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_a_task_raising_system_exit_or_keyboard_interrupt_fails_alone(engine_name, kind):
    """Regression (issue 14, item 6): on the thread engine such a task never resolved."""
    engine, sink = start_engine(engine_name, workers=1)
    try:
        engine.submit([make_task("bad", raise_base, kind), make_task("ok", square, 3)])
        results = sink.wait_for(2, timeout=30)
        expected = "SystemExit: 3" if kind == "exit" else "KeyboardInterrupt"
        assert results["bad"]["status"] == "failed" and expected in results["bad"]["exception"]
        assert SER.deserialize(results["ok"]["result"]) == 9
    finally:
        engine.shutdown()


def test_no_task_starts_while_leases_are_in_doubt_and_dropped_ones_never(engine_name, tmp_path):
    current = threading.Event()
    engine, sink = start_engine(engine_name, workers=1, leases_current=current.is_set)
    log = tmp_path / "runs"
    try:
        engine.submit([make_task(f"t{i}", logged, str(log), i) for i in range(4)])
        # Nothing may happen: give the engine a bounded chance to (wrongly) start a task.
        threading.Event().wait(0.3)
        assert runs(log) == [] and sink.results == {}
        assert engine.status()["outstanding_tasks"] == 4
        assert engine.drop(["t1", "t3", "unknown"]) == 2
        assert engine.status()["outstanding_tasks"] == 2
        current.set()
        results = sink.wait_for(2)
        assert set(results) == {"t0", "t2"}
        assert sorted(runs(log)) == ["0", "2"]
    finally:
        engine.shutdown()


def test_shutdown_with_a_task_running_is_bounded_and_leaves_no_worker(tmp_path):
    engine, sink = start_engine("process", workers=2)
    log = tmp_path / "runs"
    engine.submit([make_task("long", logged, str(log), 0, 300)])
    deadline = time.monotonic() + 30
    while not runs(log):
        assert time.monotonic() < deadline, "the task never started"
        threading.Event().wait(0.02)
    workers = [slot.process for slot in engine._slots]
    started = time.monotonic()
    engine.shutdown(timeout=0.5)
    took = time.monotonic() - started
    assert took < 5, took
    assert not any(p.is_alive() for p in workers)


def test_lost_task_is_retried_per_setting(tmp_path):
    engine, sink = start_engine("process", retries=1)
    try:
        engine.submit([make_task("flaky", exit_unless_marker, str(tmp_path / "m"))])
        engine.submit([make_task("doomed", exit_hard, 5)])
        results = sink.wait_for(2)
        assert results["flaky"]["status"] == "success"
        assert SER.deserialize(results["flaky"]["result"]) == "second try"
        doomed = results["doomed"]["exception"]
        assert doomed.count("WorkerLost:") == 2
        assert "Traceback from attempt: 1" in doomed and "final attempt" in doomed
    finally:
        engine.shutdown()


def test_service_attempts_count_against_the_retry_budget():
    engine, sink = start_engine("process", retries=1)
    try:
        engine.submit([make_task("second-run", exit_hard, 4, attempt=2)])
        text = sink.wait_for(1)["second-run"]["exception"]
        assert text.count("WorkerLost:") == 1
    finally:
        engine.shutdown()


def test_submit_after_shutdown_raises(engine_name):
    engine, _ = start_engine(engine_name, workers=1)
    engine.shutdown()
    engine.shutdown()  # idempotent
    with pytest.raises(RuntimeError):
        engine.submit([make_task("late", square, 1)])


def test_status_reports_workers_and_outstanding(engine_name):
    engine, sink = start_engine(engine_name, workers=3)
    try:
        status = engine.status()
        assert status == {
            "total_workers": 3,
            "idle_workers": 3,
            "pending_tasks": 0,
            "outstanding_tasks": 0,
            "managers": 1,
        }
        engine.submit([make_task("one", square, 2)])
        sink.wait_for(1)
    finally:
        engine.shutdown()


def make_engine(name: str, workers: int = 1):
    if name == "parsl":
        pytest.importorskip("parsl")
        from globus_compute.endpoint.engines.parsl_engine import ParslEngine

        return ParslEngine(workers)  # builds HTEX objects, starts nothing
    return ProcessEngine(workers) if name == "process" else ThreadEngine(workers)


@pytest.mark.parametrize("name", ["process", "thread", "parsl"])
def test_every_engine_refuses_misuse_with_the_same_errors(name):
    engine = make_engine(name)
    the = f"the {name} engine"
    with pytest.raises(RuntimeError, match=rf"^{the} is not running \(it is new\)$"):
        engine.submit([make_task("early", square, 1)])
    engine.shutdown()  # nothing was started: nothing to stop
    engine.shutdown()
    with pytest.raises(RuntimeError, match=rf"^{the} is not running \(it is stopped\)$"):
        engine.submit([make_task("late", square, 1)])
    with pytest.raises(RuntimeError, match=rf"^{the} can be started once \(it is stopped\)$"):
        engine.start(EngineContext(EP_ID, Collector()))


def test_a_running_engine_cannot_be_started_again(engine_name):
    engine, _ = start_engine(engine_name, workers=1)
    try:
        with pytest.raises(RuntimeError, match=r"can be started once \(it is running\)$"):
            engine.start(EngineContext(EP_ID, Collector()))
    finally:
        engine.shutdown()


def test_lifecycle_states_and_the_state_a_stop_left():
    lifecycle = Lifecycle("the widget")
    assert lifecycle.state is State.NEW and not lifecycle.running
    lifecycle.begin_start()
    with pytest.raises(RuntimeError, match=r"not running \(it is starting\)"):
        lifecycle.require_running()
    lifecycle.started()
    lifecycle.require_running()
    assert lifecycle.stop() is State.RUNNING
    assert lifecycle.stop() is State.STOPPED
    interrupted = Lifecycle("the gadget")
    interrupted.begin_start()
    assert interrupted.stop() is State.STARTING
    with pytest.raises(RuntimeError, match="the gadget was stopped while starting"):
        interrupted.started()


def test_worker_modules_do_not_load_the_agent():
    """A worker process imports the execution and worker modules only; the agent, its HTTP
    transport and the command line stay out (the forkserver preload stays small)."""
    probe = (
        "import sys\n"
        "import globus_compute.endpoint.engines.worker, globus_compute.endpoint.execution\n"
        "heavy = ('agent', 'transport', 'main', 'claim_policy', 'config', 'engines.parsl_engine')\n"
        "print([m for m in heavy if 'globus_compute.endpoint.' + m in sys.modules])\n"
        "import globus_compute.endpoint as ep\n"
        "assert ep.Agent.__module__ == 'globus_compute.endpoint.agent', ep.Agent\n"
        "assert sorted(ep.__all__) == sorted(n for n in dir(ep) if n in ep.__all__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
