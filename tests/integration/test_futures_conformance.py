"""What the standard library documents for ``Future`` and ``Executor``, over three executors.

Every test runs against ``ThreadPoolExecutor``, ``ProcessPoolExecutor`` and our ``Executor`` on
``LocalCompute`` (the embedded service and a real endpoint with worker processes), and asserts
only what the ``concurrent.futures`` documentation promises, so that all three must pass:
done-callbacks (before and after completion, raising ones, on cancelled futures, the thread they
run in), ``result()``/``exception()`` timeouts, ``InvalidStateError``, ``cancel()`` and the state
predicates, reference lifetimes (results, submitted callables, dropped executors),
``shutdown()`` from inside a callback, ``wait``/``as_completed`` edge cases, and the process-
level promises (a task submitted before interpreter exit is not lost; a submit from an
``atexit`` hook raises ``RuntimeError``). ``tests/integration/test_dropin.py`` covers the
basics (submit, map, ordering, shutdown, nesting); this module goes past them.

Our documented differences are not tested here: a task's exception reaches the user as
``TaskExecutionFailed`` with the remote traceback, and ``cancel()`` works only until the task is
handed to the service (both executors of the stdlib also refuse to cancel a running task).
Functions live at module level, so the process pool and the endpoint's workers (with this
repository on their ``PYTHONPATH``) import them by name.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import pytest

from globus_compute.errors import TaskExecutionFailed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["thread", "process", "compute"]


# -- task functions (module level: importable by workers) ---------------------------------------


def add(x, y):
    return x + y


def capture(*args, **kwargs):
    return args, kwargs


def slow(x, seconds=0.5):
    time.sleep(seconds)
    return x


def fail(message):
    raise ValueError(message)


class Payload:
    """A result or argument that can be referenced weakly."""

    def __init__(self, value=0):
        self.value = value

    def echo(self):
        return self.value


def make_payload(value):
    return Payload(value)


def touch_after(path, seconds):
    time.sleep(seconds)
    Path(path).write_text("done")
    return path


# -- executors ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gc-user")


@pytest.fixture(scope="module")
def local(user_dir):
    from globus_compute.local import LocalCompute

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    try:
        with LocalCompute(workers=2, state_dir=user_dir / "local") as stack:
            yield stack
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def make(kind, request):
    """Build executors of this kind (2 workers); each is shut down after the test."""
    made = []

    def factory():
        if kind == "thread":
            ex = cf.ThreadPoolExecutor(2)
        elif kind == "process":
            ex = cf.ProcessPoolExecutor(2)
        else:
            ex = request.getfixturevalue("local").executor()
        made.append(ex)
        return ex

    yield factory
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


def wait_for(predicate, timeout=30.0, collect=False):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        if collect:
            gc.collect()
        threading.Event().wait(0.01)


# -- done-callbacks -----------------------------------------------------------------------------


def test_done_callback_gets_the_future_once_it_is_finished(make):
    ex = make()
    fut = ex.submit(slow, 7, 0.3)
    seen = []
    called = threading.Event()

    def callback(f):
        seen.append((f, f.done(), f.result()))
        called.set()

    fut.add_done_callback(callback)
    assert called.wait(60)
    assert seen == [(fut, True, 7)]


def test_done_callback_sees_the_exception(make):
    ex = make()
    fut = ex.submit(fail, "kaput")
    got = []
    called = threading.Event()
    fut.add_done_callback(lambda f: (got.append(f.exception()), called.set()))
    assert called.wait(60)
    assert isinstance(got[0], Exception) and "kaput" in str(got[0])


def test_done_callback_added_after_completion_runs_at_once_in_the_calling_thread(make):
    ex = make()
    fut = ex.submit(add, 1, 2)
    assert fut.result(timeout=60) == 3
    threads = []
    fut.add_done_callback(lambda f: threads.append(threading.current_thread()))
    assert threads == [threading.current_thread()]


def test_callbacks_run_in_the_order_added_and_a_raising_one_is_logged(make, caplog):
    ex = make()
    fut = ex.submit(slow, 1, 0.3)
    order = []
    done = threading.Event()

    def raising(_):
        order.append("raising")
        raise RuntimeError("callback doh")

    fut.add_done_callback(raising)
    fut.add_done_callback(lambda _: (order.append("second"), done.set()))
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        assert done.wait(60)
        assert fut.result() == 1
        fut.add_done_callback(raising)  # after completion: runs now, and is logged too
    assert order == ["raising", "second", "raising"]
    logged = [r for r in caplog.records if "exception calling callback" in r.getMessage()]
    assert len(logged) == 2 and all("callback doh" in str(r.exc_info[1]) for r in logged)


def test_cancelled_future_runs_its_callbacks_and_raises_cancelled_error(make):
    ex = make()
    blockers = [ex.submit(slow, i, 1.0) for i in range(2)]  # occupy the workers
    queued = [ex.submit(add, i, 0) for i in range(6)]
    for fut in reversed(queued):
        seen = []
        fut.add_done_callback(lambda f, seen=seen: seen.append(f.cancelled()))
        if fut.cancel():
            assert fut.cancelled() and fut.done() and not fut.running()
            assert seen == [True]
            with pytest.raises(cf.CancelledError):
                fut.result(timeout=0)
            with pytest.raises(cf.CancelledError):
                fut.exception(timeout=0)
            assert fut.cancel()  # cancelling a cancelled future is still True
        else:  # already handed over: it runs to the end
            assert fut.result(timeout=60) in range(6) and seen == [False]
    assert [b.result(timeout=60) for b in blockers] == [0, 1]


# -- result(), exception(), states --------------------------------------------------------------


def test_result_and_exception_time_out_while_running_then_return(make):
    ex = make()
    fut = ex.submit(slow, 5, 1.5)
    with pytest.raises(cf.TimeoutError):
        fut.result(timeout=0)
    with pytest.raises(cf.TimeoutError):
        fut.exception(timeout=0.05)
    assert not fut.done()
    assert fut.exception(timeout=60) is None
    assert fut.result(timeout=0) == 5


def test_exception_is_returned_and_raised_by_result(make):
    ex = make()
    fut = ex.submit(fail, "nope")
    exc = fut.exception(timeout=60)
    assert isinstance(exc, Exception) and "nope" in str(exc)
    with pytest.raises(Exception, match="nope") as info:
        fut.result(timeout=0)
    assert type(info.value) is type(exc)
    assert isinstance(exc, (ValueError, TaskExecutionFailed))


def test_finished_future_states_and_cancel(make):
    ex = make()
    fut = ex.submit(add, 2, 2)
    assert fut.result(timeout=60) == 4
    assert fut.done() and not fut.running() and not fut.cancelled()
    assert not fut.cancel()
    assert fut.result() == 4


@pytest.mark.parametrize("second", ["set_result", "set_exception"])
def test_setting_a_finished_future_again_raises_invalid_state_error(make, second):
    ex = make()
    fut = ex.submit(add, 1, 1)
    assert fut.result(timeout=60) == 2
    value = 3 if second == "set_result" else ValueError("late")
    with pytest.raises(cf.InvalidStateError, match="FINISHED: <.*Future at 0x[0-9a-f]+ state="):
        getattr(fut, second)(value)
    assert fut.result() == 2


def test_repr_shows_the_state(make):
    ex = make()
    done = ex.submit(add, 1, 1)
    failed = ex.submit(fail, "x")
    done.result(timeout=60)
    failed.exception(timeout=60)
    assert "state=finished returned int" in repr(done)
    assert "state=finished raised" in repr(failed)


# -- submit and map -----------------------------------------------------------------------------


def test_submit_passes_keywords_named_self_and_fn(make):
    ex = make()
    fut = ex.submit(capture, 1, self=2, fn=3)
    assert fut.result(timeout=60) == ((1,), {"self": 2, "fn": 3})


def test_submit_needs_the_callable_positionally(make):
    ex = make()
    with pytest.raises(TypeError):
        ex.submit(fn=capture, arg=1)
    with pytest.raises(TypeError):
        ex.submit(arg=1)


def test_map_raises_the_first_failure_in_order_after_the_results_before_it(make):
    ex = make()
    results = ex.map(divmod, [1, 1, 1, 1], [2, 3, 0, 5])
    assert next(results) == (0, 1)
    assert next(results) == (0, 1)
    with pytest.raises(Exception, match="division"):
        next(results)


# -- wait / as_completed ------------------------------------------------------------------------


def test_as_completed_times_out_with_futures_left(make):
    ex = make()
    quick, lazy = ex.submit(add, 1, 1), ex.submit(slow, 0, 3.0)
    got = []
    with pytest.raises(cf.TimeoutError):
        for fut in cf.as_completed([quick, lazy, quick], timeout=1.5):
            got.append(fut)
    assert got == [quick]  # a future given twice is yielded once
    assert lazy.result(timeout=60) == 0


def test_wait_timeout_returns_what_is_not_done(make):
    ex = make()
    quick, lazy = ex.submit(add, 1, 1), ex.submit(slow, 0, 3.0)
    quick.result(timeout=60)
    done, not_done = cf.wait([quick, lazy], timeout=0.5)
    assert done == {quick} and not_done == {lazy}
    done, not_done = cf.wait([quick], timeout=0)  # already done: returns at once
    assert done == {quick} and not not_done


# -- reference lifetimes ------------------------------------------------------------------------


def test_map_keeps_no_reference_to_results_it_has_returned(make):
    ex = make()
    for obj in ex.map(make_payload, range(5)):
        ref = weakref.ref(obj)
        del obj
        wait_for(lambda ref=ref: ref() is None, timeout=10, collect=True)


def test_a_submitted_bound_method_and_its_object_are_not_kept_alive(make):
    ex = make()
    obj = Payload(3)
    collected = threading.Event()
    ref = weakref.ref(obj, lambda _: collected.set())
    assert ex.submit(obj.echo).result(timeout=60) == 3
    ex.submit(obj.echo)  # deliberately discarding the future
    del obj
    wait_for(collected.is_set, timeout=30, collect=True)
    assert ref() is None


def test_a_result_is_freed_with_its_future(make):
    ex = make()
    fut = ex.submit(make_payload, 9)
    result = fut.result(timeout=60)
    ref = weakref.ref(result)
    del fut, result
    wait_for(lambda: ref() is None, timeout=10, collect=True)


def test_a_dropped_executor_is_collected_and_still_computes_what_it_was_given(kind, request):
    if kind == "thread":
        ex = cf.ThreadPoolExecutor(2)
    elif kind == "process":
        ex = cf.ProcessPoolExecutor(2)
    else:
        ex = request.getfixturevalue("local").executor()
    results = ex.map(slow, range(4), [0.2] * 4)
    ex_ref = weakref.ref(ex)
    del ex  # never shut down
    gc.collect()
    assert ex_ref() is None
    assert list(results) == [0, 1, 2, 3]


# -- shutdown -----------------------------------------------------------------------------------


def test_shutdown_without_wait_from_inside_a_callback(make):
    ex = make()
    first = ex.submit(slow, 1, 0.3)
    others = [ex.submit(slow, i, 0.3) for i in range(2, 4)]
    stopped = threading.Event()
    first.add_done_callback(lambda _: (ex.shutdown(wait=False), stopped.set()))
    assert stopped.wait(60)
    with pytest.raises(RuntimeError):
        ex.submit(add, 1, 1)
    assert [f.result(timeout=60) for f in others] == [2, 3]  # accepted work still finishes


def test_shutdown_with_wait_from_a_callback_added_after_completion(make):
    ex = make()
    fut = ex.submit(add, 1, 1)
    assert fut.result(timeout=60) == 2
    lazy = ex.submit(slow, 4, 0.5)
    fut.add_done_callback(lambda _: ex.shutdown(wait=True))  # runs here, now
    assert lazy.done() and lazy.result() == 4
    with pytest.raises(RuntimeError):
        ex.submit(add, 1, 1)


def test_shutdown_without_wait_lets_running_futures_finish(make):
    ex = make()
    futures = [ex.submit(slow, i, 0.3) for i in range(3)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=60) for f in futures] == [0, 1, 2]


def test_shutdown_with_wait_does_not_hang_after_a_cancelled_submit(make):
    # CPython gh-94440: a future submitted and cancelled right before shutdown(wait=True).
    ex = make()
    assert ex.submit(int).result(timeout=60) == 0
    ex.submit(int).cancel()
    finished = threading.Event()
    threading.Thread(target=lambda: (ex.shutdown(wait=True), finished.set()), daemon=True).start()
    assert finished.wait(60)


# -- the interpreter exiting (a fresh interpreter per test) -------------------------------------

SCRIPT_PRELUDE = """\
import atexit, concurrent.futures as cf, json, sys
from tests.integration.test_futures_conformance import add, touch_after

def make(kind):
    if kind == "thread":
        return cf.ThreadPoolExecutor(2)
    if kind == "process":
        return cf.ProcessPoolExecutor(2)
    from globus_compute import Executor
    return Executor(endpoint_id=sys.argv[2])  # Client() of the environment below
"""


def run_script(kind, body, local_stack, user_dir, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [kind, ""]
    if kind == "compute":
        env |= {
            "GLOBUS_SDK_ENVIRONMENT": "local",
            "GLOBUS_COMPUTE_USER_DIR": str(user_dir),
            "GLOBUS_SDK_SERVICE_URL_COMPUTE": local_stack.base_url,
        }
        argv = [kind, local_stack.endpoint_id]
    return subprocess.run(
        [sys.executable, "-c", SCRIPT_PRELUDE + textwrap.dedent(body), *argv, *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture
def stack_for(kind, request, user_dir):
    """The embedded stack when the kind needs one, else None."""
    return (request.getfixturevalue("local") if kind == "compute" else None), user_dir


def test_a_task_submitted_before_interpreter_exit_is_not_lost(kind, stack_for, tmp_path):
    # The stdlib pools wait for it at exit; ours has sent it to the service, and the endpoint
    # runs it (its result is fetched later with reload_tasks). Either way it runs.
    marker = tmp_path / "ran"
    proc = run_script(
        kind,
        """
        ex = make(sys.argv[1])
        ex.submit(touch_after, sys.argv[3], 1.0)  # no shutdown, no result()
        """,
        *stack_for,
        str(marker),
    )
    assert proc.returncode == 0, proc.stderr
    wait_for(marker.exists, timeout=60)


def test_a_done_callback_runs_before_the_interpreter_exits(kind, stack_for):
    # Ours resolves the future (with its result, or failed by the exit hook) and its callback,
    # run on a callback thread, still finishes before the process ends.
    proc = run_script(
        kind,
        """
        def report(f):
            print("callback ran", flush=True)

        ex = make(sys.argv[1])
        ex.submit(add, 1, 1).add_done_callback(report)  # no shutdown, no result()
        """,
        *stack_for,
    )
    assert proc.returncode == 0, proc.stderr
    assert "callback ran" in proc.stdout, proc.stderr


def test_submit_from_an_atexit_hook_raises_runtime_error(kind, stack_for):
    proc = run_script(
        kind,
        """
        ex = make(sys.argv[1])
        assert ex.submit(add, 1, 1).result(timeout=60) == 2

        @atexit.register
        def late():
            try:
                ex.submit(add, 2, 2)
            except RuntimeError as exc:
                print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        """,
        *stack_for,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # "... after shutdown" or "... after interpreter shutdown", depending on the pool.
    assert out["message"].startswith("cannot schedule new futures after"), out
    assert out["message"].endswith("shutdown"), out
