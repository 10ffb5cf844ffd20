"""The same concurrent.futures tests against ThreadPoolExecutor, ProcessPoolExecutor and ours.

Our ``Executor`` runs on ``LocalCompute`` (the embedded service and a real endpoint with worker
processes). Functions live at module level so all three can pickle them; the endpoint's workers
import this module the way ProcessPoolExecutor's do, so its directory is put on PYTHONPATH.

One documented difference: where a task raises, the stdlib executors re-raise the original
exception object, ours raises ``TaskExecutionFailed`` whose message carries the remote
traceback. The assertions below check what a user relies on: an exception is raised and its
type name and message are in what the user sees.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KINDS = ["thread", "process", "compute"]


def square(x):
    return x * x


def add(x, y):
    return x + y


def divide(x, y):
    return x / y


def slow(x, seconds=0.5):
    time.sleep(seconds)
    return x


def boom(x):
    raise ValueError(f"bad value {x}")


@pytest.fixture(scope="module")
def local():
    from globus_compute.local import LocalCompute

    here = str(Path(__file__).resolve().parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, old) if p)
    try:
        with LocalCompute(workers=2) as stack:
            yield stack
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(params=KINDS)
def make(request):
    kind = request.param
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


def raised_text(exc: BaseException) -> str:
    """What a user sees of an exception: its type name and message."""
    return f"{type(exc).__name__}: {exc}"


def test_submit_returns_result(make):
    with make() as ex:
        assert ex.submit(add, 2, y=3).result(timeout=60) == 5


def test_exception_is_raised_with_type_and_message(make):
    with make() as ex:
        fut = ex.submit(divide, 1, 0)
        with pytest.raises(Exception) as info:
            fut.result(timeout=60)
        assert "ZeroDivisionError" in raised_text(info.value)
        assert "division by zero" in raised_text(info.value)
        assert isinstance(fut.exception(), Exception)


@pytest.mark.parametrize("chunksize", [1, 4])
def test_map_in_order(make, chunksize):
    with make() as ex:
        assert list(ex.map(square, range(20), chunksize=chunksize)) == [i * i for i in range(20)]
        assert list(ex.map(add, range(5), range(5, 100), timeout=60)) == [5, 7, 9, 11, 13]


def test_map_timeout_raises(make):
    with make() as ex:
        results = ex.map(slow, [1, 2], [1, 1], timeout=0.2)
        with pytest.raises(cf.TimeoutError):
            list(results)


def test_map_exception_reaches_iterator(make):
    with make() as ex:
        results = ex.map(boom, [7])
        with pytest.raises(Exception) as info:
            next(results)
        assert "bad value 7" in raised_text(info.value)


def test_as_completed(make):
    with make() as ex:
        futures = [ex.submit(square, i) for i in range(6)]
        done = [f.result() for f in cf.as_completed(futures, timeout=60)]
        assert sorted(done) == [0, 1, 4, 9, 16, 25]


def test_wait_first_completed(make):
    with make() as ex:
        fast, lazy = ex.submit(square, 3), ex.submit(slow, 1, 1.5)
        done, _ = cf.wait([fast, lazy], timeout=60, return_when=cf.FIRST_COMPLETED)
        assert fast in done


def test_wait_first_exception(make):
    with make() as ex:
        bad, lazy = ex.submit(boom, 1), ex.submit(slow, 1, 1.5)
        done, not_done = cf.wait([bad, lazy], timeout=60, return_when=cf.FIRST_EXCEPTION)
        assert bad in done and lazy in not_done


def test_wait_all_completed(make):
    with make() as ex:
        futures = [ex.submit(square, i) for i in range(4)]
        done, not_done = cf.wait(futures, timeout=60, return_when=cf.ALL_COMPLETED)
        assert done == set(futures) and not not_done


def test_cancel_is_either_honoured_or_refused(make):
    # Stdlib: cancellable until a worker starts it. Ours: until the service accepts it.
    with make() as ex:
        futures = [ex.submit(slow, i, 0.2) for i in range(6)]
        outcomes = [f.cancel() for f in reversed(futures)]
        for fut, cancelled in zip(reversed(futures), outcomes, strict=True):
            if cancelled:
                assert fut.cancelled()
                with pytest.raises(cf.CancelledError):
                    fut.result()
            else:
                assert fut.result(timeout=60) in range(6)


@pytest.mark.parametrize("cancel_futures", [False, True])
def test_shutdown(make, cancel_futures):
    ex = make()
    futures = [ex.submit(slow, i, 0.1) for i in range(6)]
    ex.shutdown(wait=True, cancel_futures=cancel_futures)
    assert all(f.done() for f in futures)
    if not cancel_futures:
        assert [f.result() for f in futures] == list(range(6))
    with pytest.raises(RuntimeError):
        ex.submit(square, 1)
    ex.shutdown()  # idempotent


def test_nested_with(make):
    with make() as outer:
        with make() as inner:
            a, b = outer.submit(square, 2), inner.submit(square, 3)
        assert b.done() and b.result() == 9
    assert a.done() and a.result() == 4
