"""Executor behaviour against an in-memory fake Client (see tests/support/fake_client.py)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid

import pytest

from globus_compute.client.task_table import TaskOutcome
from globus_compute.errors import (
    ExecutorShutdown,
    InvalidServiceResponse,
    ResultPollingError,
    SerializationError,
    TaskExecutionFailed,
)
from globus_compute.executor import Executor, settings
from globus_compute.executor.future import ComputeFuture
from tests.support.fake_client import FakeClient, HTTPError

pytestmark = pytest.mark.timeout(30)

EP = "00000000-0000-0000-0000-0000000000e1"


def double(x):
    """Doubles x."""
    return 2 * x


def fail(x):
    raise ZeroDivisionError(f"no {x}")


@pytest.fixture
def client():
    return FakeClient()


def compute_threads() -> set[threading.Thread]:
    """The live background threads of Executors (submitters and pollers)."""
    return {t for t in threading.enumerate() if t.name.startswith("GlobusCompute")}


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
    client.auto_finish = True
    client.submit_gate = None
    client.finish()  # whatever a test left pending, so the pollers can end
    wait_until(lambda: not compute_threads() - before)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.005)


# -- construction ----------------------------------------------------------------------------


def test_unknown_keyword_raises_type_error(client):
    with pytest.raises(TypeError, match="'bogus' is an invalid argument for Executor"):
        Executor(client=client, bogus=1)


@pytest.mark.parametrize("field", ["resource_specification", "user_endpoint_config"])
@pytest.mark.parametrize("value", [["not", "a", "dict"], {"x": object()}])
def test_config_dicts_must_be_json_dicts(client, field, value):
    with pytest.raises(TypeError):
        Executor(client=client, **{field: value})


def test_repr_and_properties(make_executor):
    tg = uuid.uuid4()
    ex = make_executor(label="lbl", task_group_id=tg, batch_size=0)
    assert repr(ex) == f"Executor<lbl; ep_id:{EP}; tg_id:{tg}; bs:1>"
    assert ex.endpoint_id == uuid.UUID(EP)
    assert ex.task_count_submitted == 0
    assert ex.serializer is ex.client.fx_serializer


def test_task_group_id_becomes_the_class_default(make_executor):
    tg = uuid.uuid4()
    make_executor(task_group_id=tg)
    assert make_executor().task_group_id == tg


def test_construction_starts_no_thread(make_executor):
    before = set(threading.enumerate())
    make_executor()
    assert set(threading.enumerate()) == before


def test_the_reference_burst_rule_applies_only_when_asked_for(client, make_executor):
    """The request budget paces requests; the reference's 4-per-16 s rule is opt-in."""
    assert make_executor().api_burst_limit is None
    assert make_executor(api_burst_limit=100).api_burst_limit == 8
    remote = FakeClient(service_url="https://compute.api.globus.org")
    assert make_executor(client=remote).api_burst_limit is None
    assert make_executor(client=remote, api_burst_limit=4).api_burst_limit == 4


# -- submission ------------------------------------------------------------------------------


def test_submit_returns_result_and_task_id(make_executor, client):
    ex = make_executor()
    fut = ex.submit(double, 21)
    assert isinstance(fut, ComputeFuture)
    assert fut.result() == 42
    assert fut.task_id is not None
    assert ex.task_count_submitted == 1


def test_function_registered_once_with_cache(make_executor, client):
    ex = make_executor()
    assert [f.result() for f in [ex.submit(double, i) for i in range(5)]] == [0, 2, 4, 6, 8]
    assert len(client.registrations) == 1
    fid = client.registrations[0]
    assert ex.register_function(double, function_id=fid) == fid
    with pytest.raises(ValueError, match="already registered"):
        ex.register_function(double, function_id=str(uuid.uuid4()))


def test_submit_to_registered_function(make_executor, client):
    ex = make_executor()
    fid = client.register_function(double)
    assert ex.submit_to_registered_function(fid, args=(4,)).result() == 8
    with pytest.raises(ValueError):
        ex.submit_to_registered_function("not-a-uuid")


def test_unpicklable_argument_raises_in_submit_and_executor_goes_on(make_executor):
    ex = make_executor()
    with pytest.raises((SerializationError, TypeError)):
        ex.submit(double, (i for i in range(3)))
    assert ex.submit(double, 1).result() == 2


def test_missing_endpoint_raises_value_error_without_shutting_down(make_executor):
    ex = make_executor(endpoint_id=None)
    with pytest.raises(ValueError, match="No endpoint_id set"):
        ex.submit(double, 1)
    ex.endpoint_id = EP
    assert ex.submit(double, 1).result() == 2


def test_lone_task_is_sent_at_once(make_executor, client):
    ex = make_executor(batch_interval=60)  # would hang for a minute if a lone task waited
    assert ex.submit(double, 1).result(timeout=10) == 2


def test_tasks_accumulate_while_a_send_is_in_flight_and_split_by_count(make_executor, client):
    client.submit_gate = threading.Event()
    ex = make_executor(batch_size=3, batch_interval=0.05)
    first = ex.submit(double, 0)
    assert client.submit_started.wait(10)
    rest = [ex.submit(double, i) for i in range(1, 8)]
    client.submit_gate.set()
    assert [f.result() for f in [first, *rest]] == [2 * i for i in range(8)]
    assert [len(b) for b in client.batches] == [1, 3, 3, 1]


def test_tasks_queued_during_a_send_wait_batch_interval_for_company(make_executor, client):
    client.submit_gate = threading.Event()
    ex = make_executor(batch_interval=0.3)
    first = ex.submit(double, 0)
    assert client.submit_started.wait(10)
    t0 = time.monotonic()
    futures = [ex.submit(double, i) for i in range(1, 3)]
    client.submit_gate.set()
    assert first.result(timeout=10) == 0
    futures.append(ex.submit(double, 3))  # after the first send ended: joins the waiting batch
    assert [f.result(timeout=10) for f in futures] == [2, 4, 6]
    assert [len(b) for b in client.batches] == [1, 3]
    assert client.batch_times[1] - t0 >= 0.25


def test_task_after_a_finished_round_trip_is_sent_at_once(make_executor, client):
    """Regression: a task submitted right after the previous result waited ``batch_interval``
    for company (the rule was "a send ended recently"), which doubled single-task latency."""
    ex = make_executor(batch_interval=60)
    assert ex.submit(double, 0).result(timeout=10) == 0
    assert ex.submit(double, 1).result(timeout=10) == 2
    assert [len(b) for b in client.batches] == [1, 1]


def test_failed_batch_fails_only_its_futures(make_executor, client):
    client.submit_errors.append(RuntimeError("service said no"))
    ex = make_executor()
    bad = ex.submit(double, 1)
    with pytest.raises(RuntimeError, match="service said no"):
        bad.result()
    assert ex.submit(double, 2).result() == 4
    assert ex.progress().failed == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (["not", "an", "object"], "not a JSON object"),
        ({"request_id": "r7", "tasks": {}}, "accepted 0 of 1 task"),
    ],
)
def test_unusable_submit_answer_fails_its_batch_with_invalid_service_response(
    make_executor, client, answer, message
):
    client.submit_answers.append(answer)
    ex = make_executor()
    bad = ex.submit(double, 1)
    with pytest.raises(InvalidServiceResponse, match=message):
        bad.result(timeout=10)
    assert ex.submit(double, 2).result(timeout=10) == 4  # the submitter goes on
    assert ex.progress().failed == 1


def test_undeserializable_result_fails_the_future_instead_of_resolving_to_none(
    make_executor, client
):
    """Regression: an outcome with status "success" whose result could not be deserialized
    resolved its future to None (the poller looked at the status, not the exception)."""
    client.auto_finish = False
    ex = make_executor()
    fut = ex.submit(double, 1)
    wait_until(lambda: fut.task_id is not None)
    error = SerializationError("Result Object Deserialization: boom")
    client.set_outcome(fut.task_id, TaskOutcome("success", False, exception=error))
    with pytest.raises(SerializationError, match="boom"):
        fut.result(timeout=10)


def test_task_failure_is_task_execution_failed(make_executor):
    ex = make_executor()
    fut = ex.submit(fail, 3)
    with pytest.raises(TaskExecutionFailed) as info:
        fut.result()
    assert "ZeroDivisionError: no 3" in str(info.value)


def test_cancel_succeeds_until_hand_off(make_executor, client):
    client.submit_gate = threading.Event()
    ex = make_executor()
    sent = ex.submit(double, 1)
    assert client.submit_started.wait(10)
    queued = ex.submit(double, 2)
    assert queued.cancel()
    assert not sent.cancel()  # already handed to the service
    client.submit_gate.set()
    assert sent.result() == 2
    ex.shutdown()
    assert queued.cancelled()
    assert client.submitted_payload_count() == 1
    assert ex.progress().cancelled == 1


# -- results ---------------------------------------------------------------------------------


def test_poll_error_fails_pending_futures_only(make_executor, client):
    ex = make_executor()
    done = ex.submit(double, 1)
    assert done.result() == 2
    client.auto_finish = False
    client.poll_errors.append(HTTPError(401, "token expired"))
    pending = ex.submit(double, 2)
    with pytest.raises(ResultPollingError, match="401"):
        pending.result()
    assert done.result() == 2
    client.auto_finish = True
    assert ex.submit(double, 3).result() == 6  # a fresh poller takes over


def test_transient_poll_errors_are_retried(make_executor, client):
    client.poll_errors.extend([HTTPError(503), ConnectionError("reset")])
    ex = make_executor()
    assert ex.submit(double, 5).result() == 10


# -- shutdown --------------------------------------------------------------------------------


def test_submit_after_shutdown_raises(make_executor):
    ex = make_executor()
    ex.shutdown()
    with pytest.raises(ExecutorShutdown, match="shutdown") as info:
        ex.submit(double, 1)
    assert isinstance(info.value, RuntimeError)  # what the stdlib executors raise


def test_shutdown_is_idempotent_and_joins_threads(make_executor):
    before = compute_threads()
    ex = make_executor()
    fut = ex.submit(double, 1)
    ex.shutdown()
    ex.shutdown()
    ex.shutdown(wait=False)
    assert fut.result(timeout=0) == 2
    assert not compute_threads() - before  # the submitter and every poller have ended


def test_shutdown_wait_blocks_until_results_arrive(make_executor, client):
    client.auto_finish = False
    ex = make_executor()
    futures = [ex.submit(double, i) for i in range(3)]
    wait_until(lambda: ex.task_count_submitted == 3)
    threading.Timer(0.1, client.finish).start()
    ex.shutdown(wait=True)
    assert all(f.done() for f in futures)


def test_shutdown_cancel_futures_cancels_queued_tasks(make_executor, client):
    client.submit_gate = threading.Event()
    ex = make_executor()
    sent = ex.submit(double, 1)
    assert client.submit_started.wait(10)
    queued = [ex.submit(double, i) for i in range(5)]
    ex.shutdown(wait=False, cancel_futures=True)
    client.submit_gate.set()
    ex.shutdown(wait=True)
    assert all(f.cancelled() for f in queued)
    assert sent.result() == 2


def test_context_manager_waits(make_executor):
    with make_executor() as ex:
        fut = ex.submit(double, 4)
    assert fut.done() and fut.result() == 8


# -- map -------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_keeps_order(make_executor, chunksize):
    ex = make_executor()
    assert list(ex.map(pow, range(10), range(10), chunksize=chunksize)) == [i**i for i in range(10)]


def test_map_with_buffersize_submits_lazily(make_executor, client):
    ex = make_executor()
    results = ex.map(double, range(10), buffersize=2)
    assert ex.progress().submitted == 2
    assert list(results) == [2 * i for i in range(10)]


def test_map_timeout_counts_from_the_call(make_executor, client):
    client.auto_finish = False
    ex = make_executor()
    results = ex.map(double, range(3), timeout=0.2)
    with pytest.raises(cf.TimeoutError):
        next(results)


def test_map_argument_validation(make_executor):
    ex = make_executor()
    with pytest.raises(ValueError):
        ex.map(double, [1], chunksize=0)
    with pytest.raises(ValueError):
        ex.map(double, [1], buffersize=0)


def test_map_progress_without_tqdm_says_what_to_install(make_executor, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        make_executor().map(double, [1], progress=True)


def test_map_progress_bar_counts_every_result(make_executor, capsys):
    pytest.importorskip("tqdm")
    results = make_executor().map(double, range(12), chunksize=5, progress=True)
    assert list(results) == [2 * i for i in range(12)]
    assert "12/12" in capsys.readouterr().err


def test_stdlib_wait_and_as_completed_work(make_executor):
    ex = make_executor()
    futures = [ex.submit(double, i) for i in range(5)]
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=10)) == [0, 2, 4, 6, 8]
    done, not_done = cf.wait(futures, timeout=10)
    assert len(done) == 5 and not not_done


# -- reload and progress ---------------------------------------------------------------------


def test_reload_tasks_from_a_new_executor(make_executor, client):
    ex = make_executor()
    finished = ex.submit(double, 1).result()
    client.auto_finish = False
    pending = ex.submit(double, 2)
    wait_until(lambda: ex.task_count_submitted == 2)
    tg = ex.task_group_id
    ex.shutdown(wait=False)

    other = make_executor(task_group_id=None)
    futures = other.reload_tasks(tg)
    assert len(futures) == 2
    assert futures[0].result(timeout=0) == finished
    assert not futures[1].done()
    client.finish()
    assert futures[1].result() == 4
    assert pending.result() == 4


def test_reload_tasks_needs_a_task_group(make_executor, client, monkeypatch):
    monkeypatch.setattr(settings, "_default_task_group_id", None)
    ex = make_executor()
    with pytest.raises(ValueError, match="task_group_id"):
        ex.reload_tasks()


def test_progress_counts(make_executor):
    ex = make_executor()
    ok = [ex.submit(double, i) for i in range(3)]
    bad = ex.submit(fail, 0)
    cf.wait([*ok, bad])
    wait_until(lambda: ex.progress().done == 3)
    assert ex.progress() == (4, 0, 0, 3, 1, 0)
    submitted, queued, running, done, failed, cancelled = ex.progress()  # still six counts
    assert ex.progress().waiting_on == {}


def test_progress_says_which_offline_endpoint_running_tasks_wait_on(make_executor, client):
    client.auto_finish = False
    client.endpoint_statuses[EP] = {"status": "offline", "last_heartbeat": 1_800_000_000.0}
    ex = make_executor()
    futures = [ex.submit(double, i) for i in range(2)]
    wait_until(lambda: ex.progress().waiting_on)
    progress = ex.progress()
    assert progress.waiting_on == {EP: 1_800_000_000.0}
    assert progress == (2, 0, 2, 0, 0, 0)
    assert "waiting_on=" in repr(progress)
    client.endpoint_statuses[EP] = {"status": "online"}
    client.finish()
    assert [f.result(timeout=10) for f in futures] == [0, 2]
    wait_until(lambda: ex.progress().done == 2)
    assert ex.progress().waiting_on == {}


def test_compute_future_is_small():
    import tracemalloc

    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    futures = [ComputeFuture() for _ in range(2000)]
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (used - base) / len(futures) < 700
