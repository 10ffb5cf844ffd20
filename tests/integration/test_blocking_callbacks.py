"""A done-callback that waits must not stall the other futures of the Executor.

``concurrent.futures`` runs a done-callback in the thread that resolves the future; with
``ThreadPoolExecutor(2)`` that is a worker, and the other worker goes on resolving futures, so a
callback may wait for another task (``ex.submit(g, f.result()).result()``, a common way to chain
work) or simply take its time. Our Executor resolves every future on its one result-poller
thread; an adversarial review found that, with callbacks run there, the chained task could never
be delivered to the callback waiting for it, and unrelated futures were held up while the
callback ran. Callbacks now run on callback threads (``executor/future.py``). The thread pool
runs beside ours as the control.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def add(x, y):
    return x + y


def add_after_a_while(x, y):
    """``add`` that takes half a second, so a callback added right after submit is not run
    at once in the adding thread (the future is not done yet)."""
    import time

    time.sleep(0.5)
    return x + y


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from globus_compute.local import LocalCompute

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    try:
        with LocalCompute(workers=2, state_dir=tmp_path_factory.mktemp("cb") / "s") as stack:
            yield stack
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(params=["thread", "compute"])
def ex(request):
    if request.param == "thread":
        executor = cf.ThreadPoolExecutor(2)
    else:
        executor = request.getfixturevalue("local").executor()
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def test_a_callback_may_wait_for_a_task_it_chains(ex):
    outcome: dict[str, object] = {}
    done = threading.Event()

    def chain(future):
        try:
            outcome["value"] = ex.submit(add, future.result(), 10).result(timeout=15)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["value"] = repr(exc)
        done.set()

    ex.submit(add, 1, 1).add_done_callback(chain)
    assert done.wait(30), "callback never finished"
    assert outcome["value"] == 12


def test_a_waiting_callback_does_not_hold_up_other_futures(ex):
    release = threading.Event()
    entered = threading.Event()

    ran_in: list[threading.Thread] = []

    def slow_callback(_future):
        ran_in.append(threading.current_thread())
        entered.set()
        release.wait(30)

    try:
        ex.submit(add_after_a_while, 1, 1).add_done_callback(slow_callback)
        assert entered.wait(30), "first task never resolved"
        assert ran_in != [threading.current_thread()], "the callback ran in the adding thread"
        other = ex.submit(add, 2, 2)
        assert other.result(timeout=10) == 4
    finally:
        release.set()
