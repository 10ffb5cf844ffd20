"""The Executor at the two moments a process's threads go away: interpreter exit, and fork.

Each test runs a short script in a fresh interpreter (the fake Client of tests/support, so no
service is needed) and reads what it printed: these are behaviours of a whole process, which a
test inside pytest's own process cannot show (or would disturb).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """\
import atexit, gc, json, os, sys, threading, time
from tests.support.fake_client import FakeClient
from globus_compute.executor import Executor
EP = "00000000-0000-0000-0000-0000000000e1"

def double(x):
    return 2 * x

def report(**kw):
    print("REPORT " + json.dumps(kw), flush=True)

def outcome(call):
    try:
        return {"value": repr(call())}
    except BaseException as exc:
        return {"type": type(exc).__name__, "runtime": isinstance(exc, RuntimeError),
                "message": str(exc)}
"""


def run_script(body: str, timeout: float = 60) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Run PRELUDE + body; return the REPORT lines (as dicts) and the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    reports = [
        json.loads(line.removeprefix("REPORT "))
        for line in proc.stdout.splitlines()
        if line.startswith("REPORT ")
    ]
    return reports, proc


# -- item 5: submit in an atexit hook -------------------------------------------------------


def test_first_submit_of_the_process_in_an_atexit_hook_raises_like_the_stdlib():
    """Regression: it raised an unrelated threading error ("can't register atexit...")."""
    reports, proc = run_script(
        """
        ex = Executor(endpoint_id=EP, client=FakeClient())
        atexit.register(lambda: report(**outcome(lambda: ex.submit(double, 1))))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert reports == [
        {
            "type": "ExecutorShutdown",
            "runtime": True,
            "message": "cannot schedule new futures after interpreter shutdown",
        }
    ]


def test_submit_in_an_atexit_hook_after_other_submits_raises_like_the_stdlib():
    """Regression: after another executor had submitted, the task was accepted."""
    reports, proc = run_script(
        """
        client = FakeClient()
        early = Executor(endpoint_id=EP, client=client)
        assert early.submit(double, 1).result(timeout=10) == 2
        late = Executor(endpoint_id=EP, client=client)
        atexit.register(lambda: report(
            early=outcome(lambda: early.submit(double, 2)),
            late=outcome(lambda: late.submit(double, 3)),
            sent=client.submitted_payload_count(),
        ))
        """
    )
    assert proc.returncode == 0, proc.stderr
    (report,) = reports
    for name in ("early", "late"):
        assert report[name]["type"] == "ExecutorShutdown" and report[name]["runtime"]
        assert "cannot schedule new futures after interpreter shutdown" in report[name]["message"]
    assert report["sent"] == 1


def test_executor_left_open_flushes_its_queue_and_fails_pending_futures_at_exit():
    reports, proc = run_script(
        """
        client = FakeClient(auto_finish=False)
        ex = Executor(endpoint_id=EP, client=client)
        fut = ex.submit(double, 1)
        fut.add_done_callback(lambda f: report(error=str(f.exception())))
        """
    )
    assert proc.returncode == 0, proc.stderr
    (report,) = reports
    assert "the interpreter is exiting" in report["error"] and "reload_tasks" in report["error"]


def test_exit_aborts_a_submit_still_waiting_for_its_turn_in_the_request_budget():
    """Issue 12 and 13 together: after the exit flush times out, a submit waiting for a budget
    turn (a minute away here) is cut short and its future fails; exit does not wait the turn."""
    started = time.monotonic()
    reports, proc = run_script(
        """
        from globus_compute.client.request_budget import RequestBudget, RequestRate
        from globus_compute.executor import process_hooks
        process_hooks.EXIT_FLUSH_TIMEOUT_S = 0.5
        budget = RequestBudget(RequestRate(1, 600.0))
        budget.take()  # the next turn is ten minutes away
        client = FakeClient(service_url="https://compute.api.globus.org", request_budget=budget)
        ex = Executor(endpoint_id=EP, client=client)
        fut = ex.submit(double, 1)
        fut.add_done_callback(lambda f: report(
            type=type(f.exception()).__name__, error=str(f.exception()), sent=len(client.batches)
        ))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert reports == [
        {
            "type": "ExecutorShutdown",
            "error": "the interpreter is exiting; the task was not sent",
            "sent": 0,
        }
    ]
    assert time.monotonic() - started < 30


# -- item 7: a dropped executor and interpreter exit ----------------------------------------


def test_dropped_executor_with_a_pending_task_does_not_hang_interpreter_exit():
    """The issue-11 note: an Executor collected while a task is pending left its poller
    polling, and exit waited for it. Now the exit hook reaches the dropped executor's work."""
    started = time.monotonic()
    reports, proc = run_script(
        """
        import weakref
        client = FakeClient(auto_finish=False)  # the task "sleeps" for ever
        ex = Executor(endpoint_id=EP, client=client)
        fut = ex.submit(double, 1)
        deadline = time.monotonic() + 10
        while fut.task_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        ref = weakref.ref(ex)
        del ex
        gc.collect()
        fut.add_done_callback(lambda f: report(error=str(f.exception())))
        report(collected=ref() is None,
               threads=sorted(t.name for t in threading.enumerate() if t.name != "MainThread"))
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert reports[0]["collected"] is True
    assert "GlobusComputeResultPoller" in reports[0]["threads"]  # still finishing what it owns
    assert "the interpreter is exiting" in reports[1]["error"]
    assert time.monotonic() - started < 30


# -- item 8: fork -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_submit_in_a_forked_child_raises_a_clear_error_naming_fork():
    """Regression: the child's submit raised "threads can only be started once" (or queued a
    task that was never sent); now it is ExecutorBroken naming fork, and the parent goes on."""
    reports, proc = run_script(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        client = FakeClient()
        ex = Executor(endpoint_id=EP, client=client)
        assert ex.submit(double, 1).result(timeout=10) == 2  # threads running in the parent
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                child = {
                    "submit": outcome(lambda: ex.submit(double, 2)),
                    "map": outcome(lambda: list(ex.map(double, [1]))),
                    "shutdown": outcome(lambda: ex.shutdown(wait=True)),
                }
                os.write(write_end, json.dumps(child).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child = json.loads(pipe.read())
        os.waitpid(pid, 0)
        report(child=child, parent=outcome(lambda: ex.submit(double, 3).result(timeout=10)))
        ex.shutdown()
        """
    )
    assert proc.returncode == 0, proc.stderr
    (report,) = reports
    child = report["child"]
    for name in ("submit", "map"):
        assert child[name]["type"] == "ExecutorBroken", child
        assert "os.fork()" in child[name]["message"]
        assert "create a new Executor" in child[name]["message"]
    assert child["shutdown"] == {"value": "None"}  # touches nothing of the parent's
    assert report["parent"] == {"value": "6"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_done_callbacks_still_run_in_a_forked_child():
    """The callback threads started in the parent do not survive fork; a child that makes its
    own Executor gets a fresh pool, and its futures' callbacks run there."""
    reports, proc = run_script(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        parent_ran = threading.Event()
        ex = Executor(endpoint_id=EP, client=FakeClient())
        ex.submit(double, 1).add_done_callback(lambda _: parent_ran.set())
        assert parent_ran.wait(10)  # the parent's callback pool has a thread, idle now
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                ran = threading.Event()
                threads = []
                child_ex = Executor(endpoint_id=EP, client=FakeClient())
                future = child_ex.submit(double, 2)
                future.add_done_callback(
                    lambda _: (threads.append(threading.current_thread().name), ran.set())
                )
                child = {"ran": ran.wait(10), "value": future.result(timeout=10),
                         "threads": threads}
                child_ex.shutdown()
                os.write(write_end, json.dumps(child).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child = json.loads(pipe.read())
        os.waitpid(pid, 0)
        report(child=child)
        ex.shutdown()
        """
    )
    assert proc.returncode == 0, proc.stderr
    (report,) = reports
    assert report["child"]["ran"] is True and report["child"]["value"] == 4, report
