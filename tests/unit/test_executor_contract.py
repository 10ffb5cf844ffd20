"""Regressions of issue 13 (the stdlib's Executor contract to the letter), on the fake Client.

Each test is named for the defect it pins; the process-level ones (interpreter exit, fork) are
in tests/functional/test_executor_process_events.py, the cross-executor conformance suite in
tests/integration/test_futures_conformance.py.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import threading
import time
import weakref

import pytest

from globus_compute.errors import (
    ExecutorBroken,
    ExecutorShutdown,
    InvalidServiceResponse,
    ResultPollingError,
)
from globus_compute.executor import Executor
from globus_compute.executor.future import CALLBACK_THREAD_NAME, ComputeFuture
from tests.support.fake_client import FakeClient

pytestmark = pytest.mark.timeout(30)

EP = "00000000-0000-0000-0000-0000000000e1"


class Box:
    """A result that can be referenced weakly."""

    def __init__(self, value):
        self.value = value


def boxed(x):
    return Box(x)


def boxed_list(n):
    return [Box(i) for i in range(n)]


class Greeter:
    """Instances with equal state serialize (as bound methods) to equal code."""

    def __init__(self, greeting="hello"):
        self.greeting = greeting

    def greet(self, name):
        return f"{self.greeting} {name}"


def compute_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("GlobusCompute")}


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.005)


@pytest.fixture
def client():
    return FakeClient()


@pytest.fixture
def make_executor(client):
    made = []
    before = compute_threads()

    def make(**kwargs):
        kwargs.setdefault("endpoint_id", EP)
        kwargs.setdefault("client", client)
        kwargs.setdefault("poll_interval_s", 0.01)
        ex = Executor(**kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(wait=False, cancel_futures=True)
    made.clear()
    client.auto_finish = True
    client.submit_gate = None
    client.finish()
    wait_until(lambda: not compute_threads() - before)


def finishes(action, timeout=5.0) -> bool:
    """True if ``action()`` returns (or raises) within ``timeout`` (run in a daemon thread)."""
    done = threading.Event()

    def run():
        try:
            action()
        except BaseException:
            pass
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(timeout)


# -- item 1: a second set_result hung -----------------------------------------------------------


@pytest.mark.parametrize("second", ["set_result", "set_exception"])
def test_second_set_on_a_finished_future_raises_invalid_state_instead_of_hanging(second):
    fut = ComputeFuture("t-1")
    fut.set_result(1)
    raised = []

    def again():
        try:
            getattr(fut, second)(2 if second == "set_result" else ValueError())
        except cf.InvalidStateError as exc:
            raised.append(exc)

    assert finishes(again), f"a second {second} hung (repr took the future's lock)"
    assert raised and "FINISHED" in str(raised[0]) and "task_id=t-1" in str(raised[0])
    assert fut.result() == 1


def test_compute_future_repr_matches_the_stdlib_format():
    ours, stdlib = ComputeFuture(), cf.Future()
    for fut in (ours, stdlib):
        fut.set_exception(KeyError("k"))
    assert repr(ours).split(" at ")[1].split(" ", 1)[1] == repr(stdlib).split(" at ")[1].split(
        " ", 1
    )[1].replace("Future", "ComputeFuture")
    assert repr(ours).startswith("<ComputeFuture at ") and "raised KeyError" in repr(ours)


# -- item 2: map() kept the last result alive ---------------------------------------------------


@pytest.mark.parametrize("chunksize", [1, 3])
@pytest.mark.parametrize("buffersize", [None, 2])
def test_map_iterator_does_not_keep_the_last_result_alive(make_executor, chunksize, buffersize):
    ex = make_executor()
    results = ex.map(boxed, range(6), chunksize=chunksize, buffersize=buffersize, timeout=20)
    for expected in range(4):
        value = next(results)
        assert value.value == expected
        ref = weakref.ref(value)
        del value
        gc.collect()
        assert ref() is None, "the map iterator (or the executor) still holds the result"
    assert [b.value for b in results] == [4, 5]


def test_map_with_progress_bar_does_not_keep_the_last_result_alive(make_executor):
    pytest.importorskip("tqdm")
    results = make_executor().map(boxed, range(3), progress=True)
    value = next(results)
    ref = weakref.ref(value)
    del value
    gc.collect()
    assert ref() is None
    assert len(list(results)) == 2


def test_submitted_future_and_result_are_not_kept_alive_by_the_executor(make_executor):
    ex = make_executor()
    fut = ex.submit(boxed, 1)
    result = fut.result(timeout=10)
    fut_ref, result_ref = weakref.ref(fut), weakref.ref(result)
    del fut, result
    gc.collect()
    assert fut_ref() is None and result_ref() is None


# -- item 3: the registration cache kept every callable alive -----------------------------------


def test_submitted_bound_method_is_not_kept_alive_by_the_registration_cache(make_executor):
    ex = make_executor()
    greeter = Greeter()
    assert ex.submit(greeter.greet, "ada").result(timeout=10) == "hello ada"
    ref = weakref.ref(greeter)
    del greeter
    gc.collect()
    assert ref() is None


def test_submitted_function_is_not_kept_alive_by_the_registration_cache(make_executor):
    ex = make_executor()
    namespace: dict = {}
    exec("def made_at_runtime(x):\n    return x + 1\n", namespace)
    fn = namespace.pop("made_at_runtime")
    assert ex.submit(fn, 1).result(timeout=10) == 2
    ref = weakref.ref(fn)
    del fn, namespace
    gc.collect()
    assert ref() is None


def test_methods_of_equal_instances_are_registered_once(make_executor, client):
    ex = make_executor()
    futures = [ex.submit(Greeter().greet, str(i)) for i in range(20)]
    assert [f.result(timeout=10) for f in futures] == [f"hello {i}" for i in range(20)]
    assert len(client.registrations) == 1


def test_methods_of_instances_with_different_state_each_run_their_own(make_executor, client):
    # The state is part of the serialized method: sharing one registration would be wrong.
    ex = make_executor()
    futures = [ex.submit(Greeter(g).greet, "x") for g in ("hi", "yo", "hi")]
    assert [f.result(timeout=10) for f in futures] == ["hi x", "yo x", "hi x"]
    assert len(client.registrations) == 2


def test_same_callable_is_looked_up_without_serializing_again(make_executor, client, monkeypatch):
    ex = make_executor()
    greeter = Greeter()
    ex.submit(greeter.greet, "a").result(timeout=10)
    calls = []
    real = client.fx_serializer.serialize
    monkeypatch.setattr(client.fx_serializer, "serialize", lambda v: calls.append(v) or real(v))
    ex.submit(greeter.greet, "b").result(timeout=10)
    assert not any(callable(v) for v in calls)  # only the arguments were serialized


# -- item 6: no broken state --------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [["not", "an", "object"], "text", None, {"request_id": "r"}, {"tasks": []}]
)
def test_unusable_submit_answer_fails_only_its_batch(make_executor, client, answer):
    client.submit_answers.append(answer)
    ex = make_executor()
    with pytest.raises(InvalidServiceResponse):
        ex.submit(boxed, 1).result(timeout=10)
    assert ex.submit(boxed, 2).result(timeout=10).value == 2


class DeadlyError(BaseException):
    """Escapes every ``except Exception``: stands for a defect that kills a loop."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_submitter_thread_death_fails_the_batch_in_flight_and_breaks_the_executor(
    make_executor, client
):
    """Regression: the futures of the batch being sent (already RUNNING) were failed by nobody,
    and later submits were queued but never sent."""
    client.submit_errors.append(DeadlyError("boom"))
    ex = make_executor()
    in_flight = ex.submit(boxed, 1)
    with pytest.raises(ExecutorBroken, match="task submitter thread failed.*DeadlyError"):
        in_flight.result(timeout=10)
    with pytest.raises(ExecutorBroken, match="task submitter thread failed") as info:
        ex.submit(boxed, 2)
    assert isinstance(info.value, cf.BrokenExecutor)
    with pytest.raises(ExecutorBroken):
        list(ex.map(boxed, [1]))
    ex.shutdown(wait=True)  # still shuts down cleanly


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_poller_thread_death_breaks_the_executor(make_executor, client, monkeypatch):
    """Regression: a poller dying of a defect failed its futures with ResultPollingError and
    the executor carried on as if nothing happened."""
    client.auto_finish = False
    ex = make_executor()
    victim, bystander = ex.submit(boxed, 1), ex.submit(boxed, 2)
    wait_until(lambda: victim.task_id is not None and bystander.task_id is not None)
    real = client.get_task_outcomes

    def one_answer_is_not_an_outcome(ids, *, wait=0.0):
        return {**real(ids, wait=wait), victim.task_id: "not an outcome"}  # _apply trips

    monkeypatch.setattr(client, "get_task_outcomes", one_answer_is_not_an_outcome)
    for fut in (victim, bystander):
        with pytest.raises(ExecutorBroken, match="result poller thread failed") as info:
            fut.result(timeout=10)
        assert "reload_tasks" in str(info.value)  # the task was accepted: say how to get it
    with pytest.raises(ExecutorBroken, match="result poller thread failed"):
        ex.submit(boxed, 3)


def test_done_callback_raising_system_exit_does_not_strand_other_futures(make_executor, client):
    client.auto_finish = False
    ex = make_executor()
    futures = [ex.submit(boxed, i) for i in range(3)]
    wait_until(lambda: all(f.task_id for f in futures))

    def exits(_):
        raise SystemExit(1)

    futures[0].add_done_callback(exits)
    client.auto_finish = True
    client.finish()
    assert [f.result(timeout=10).value for f in futures] == [0, 1, 2]
    assert ex.submit(boxed, 3).result(timeout=10).value == 3  # the poller lived


# -- item 7: a dropped executor kept its threads ------------------------------------------------


def test_dropped_executor_is_collected_and_its_threads_end_after_finishing_its_tasks(client):
    before = compute_threads()
    client.auto_finish = False
    ex = Executor(endpoint_id=EP, client=client, poll_interval_s=0.01)
    fut = ex.submit(boxed, 7)
    wait_until(lambda: fut.task_id is not None)
    assert compute_threads() - before, "expected running background threads"
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is None, "the executor's threads keep it alive"
    client.finish()
    assert fut.result(timeout=10).value == 7  # what it owned is finished, not failed
    wait_until(lambda: not compute_threads() - before)


def test_temporary_executor_still_delivers_its_result(client):
    before = compute_threads()
    assert Executor(endpoint_id=EP, client=client).submit(boxed, 3).result(timeout=10).value == 3
    wait_until(lambda: not compute_threads() - before)


# -- _get_result_watcher (Parsl's shutdown) -----------------------------------------------------


def test_get_result_watcher_is_available_before_the_first_submit_and_after_shutdown(
    make_executor,
):
    ex = make_executor()
    watcher = ex._get_result_watcher()
    watcher.shutdown(wait=False)  # before anything was submitted: nothing to do, no error
    ex.shutdown()
    ex._get_result_watcher().shutdown(wait=False, cancel_futures=True)
    ex._get_result_watcher().shutdown(wait=True, cancel_futures=True)  # idempotent


def test_result_watcher_shutdown_with_cancel_futures_fails_open_futures_at_once(
    make_executor, client
):
    client.auto_finish = False
    ex = make_executor()
    futures = [ex.submit(boxed, i) for i in range(3)]
    wait_until(lambda: all(f.task_id for f in futures))
    ex.shutdown(wait=False, cancel_futures=True)  # Parsl's order
    ex._get_result_watcher().shutdown(wait=False, cancel_futures=True)
    assert all(f.done() for f in futures)  # before shutdown returned, not eventually
    for fut in futures:
        with pytest.raises(ResultPollingError, match="result watcher was shut down"):
            fut.result(timeout=0)
    client.finish()  # results arriving now are delivered to nobody
    ex._get_result_watcher().join(10)
    assert all(isinstance(f.exception(), ResultPollingError) for f in futures)


def test_submit_after_the_result_watcher_was_shut_down_raises(make_executor):
    ex = make_executor()
    ex._get_result_watcher().shutdown(wait=False, cancel_futures=True)
    with pytest.raises(ExecutorShutdown, match="delivers no more results"):
        ex.submit(boxed, 1)


# -- shutdown from a done-callback --------------------------------------------------------------


def test_shutdown_wait_from_a_done_callback_does_not_deadlock(make_executor, client):
    client.auto_finish = False
    ex = make_executor()
    first = ex.submit(boxed, 1)
    wait_until(lambda: first.task_id is not None)
    called = threading.Event()

    def stop(_):
        ex.shutdown(wait=True)
        called.set()

    first.add_done_callback(stop)
    client.finish()
    assert called.wait(10)
    with pytest.raises(ExecutorShutdown):
        ex.submit(boxed, 2)


# -- where done-callbacks run -------------------------------------------------------------------


def test_a_blocking_done_callback_runs_on_a_callback_thread_and_holds_up_no_other_future(
    make_executor, client
):
    client.auto_finish = False
    ex = make_executor()
    first = ex.submit(boxed, 1)
    wait_until(lambda: first.task_id is not None)
    entered, go = threading.Event(), threading.Event()
    threads: list[str] = []

    def blocking(_):
        threads.append(threading.current_thread().name)
        entered.set()
        go.wait(10)

    first.add_done_callback(blocking)
    client.auto_finish = True
    client.finish()
    try:
        assert entered.wait(10)
        assert threads[0].startswith(CALLBACK_THREAD_NAME), threads
        assert ex.submit(boxed, 2).result(timeout=10).value == 2  # the poller is not held
    finally:
        go.set()


def test_shutdown_wait_returns_only_after_running_callbacks_finish(make_executor, client):
    ex = make_executor()
    entered, go = threading.Event(), threading.Event()
    order: list[str] = []

    def blocking(_):
        entered.set()
        go.wait(10)
        order.append("callback")

    client.auto_finish = False
    fut = ex.submit(boxed, 1)
    wait_until(lambda: fut.task_id is not None)
    fut.add_done_callback(blocking)
    client.finish()
    assert entered.wait(10)
    stopper = threading.Thread(target=lambda: (ex.shutdown(wait=True), order.append("shutdown")))
    stopper.start()
    try:
        stopper.join(1.0)  # long enough for a shutdown that does not wait to have returned
        assert stopper.is_alive(), "shutdown(wait=True) returned while a callback still ran"
    finally:
        go.set()
        stopper.join(10)
    assert order == ["callback", "shutdown"]


def test_a_future_without_callbacks_is_resolved_without_a_hand_off(monkeypatch, make_executor):
    from globus_compute.executor import future as future_module

    handed: list[object] = []
    monkeypatch.setattr(future_module._callbacks, "dispatch", handed.append)
    ex = make_executor()
    assert [f.result(timeout=10).value for f in [ex.submit(boxed, i) for i in range(5)]] == [
        0, 1, 2, 3, 4,
    ]  # fmt: skip
    assert handed == []
