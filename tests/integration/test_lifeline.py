"""The tie between a parent and its child processes (``globus_compute.lifeline``), for real."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from globus_compute.lifeline import ChildLifeline, Lifeline, ParentWatch, die_with_parent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CHILD = """
import sys, threading
from globus_compute.lifeline import ChildLifeline
gone = threading.Event()
with ChildLifeline.from_environment() as tie:
    tie.announce("READY " + sys.argv[1])
    tie.watch(gone.set)
    print("parent gone" if gone.wait(30) else "timed out", flush=True)
"""


def _start_child(lifeline: Lifeline, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **lifeline.child_env()),
        pass_fds=(lifeline.child_fd,),
    )
    lifeline.close_child_end()
    return child


def test_the_handshake_arrives_and_cutting_the_tie_stops_the_child() -> None:
    lifeline = Lifeline()
    child = _start_child(lifeline, "hello")
    try:
        assert lifeline.read_line(30) == "READY hello"
        lifeline.close()  # as the parent's death would
        out, _ = child.communicate(timeout=30)
        assert out.strip() == "parent gone"
    finally:
        if child.poll() is None:
            child.kill()


def test_a_child_that_exits_before_its_handshake_reads_as_end_of_file() -> None:
    lifeline = Lifeline()
    child = subprocess.Popen(
        [sys.executable, "-c", "raise SystemExit(3)"], pass_fds=(lifeline.child_fd,)
    )
    lifeline.close_child_end()
    started = time.monotonic()
    assert lifeline.read_line(30) is None
    assert time.monotonic() - started < 20
    assert child.wait(10) == 3
    lifeline.close()


def test_a_silent_child_times_out() -> None:
    lifeline = Lifeline()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             pass_fds=(lifeline.child_fd,))  # fmt: skip
    lifeline.close_child_end()
    try:
        with pytest.raises(TimeoutError):
            lifeline.read_line(0.3)
    finally:
        child.kill()
        child.wait()
        lifeline.close()


def test_without_a_tie_in_the_environment_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLOBUS_COMPUTE_LIFELINE_FD", raising=False)
    assert ChildLifeline.from_environment() is None


def test_a_parent_watch_fires_on_end_of_file_and_stops_cleanly() -> None:
    read_end, write_end = os.pipe()
    fired = threading.Event()
    watch = ParentWatch(read_end, fired.set)
    watch.start()
    os.write(write_end, b"noise is ignored")
    assert not fired.wait(0.2)
    os.close(write_end)
    assert fired.wait(10)
    watch.stop()
    os.close(read_end)
    quiet_r, quiet_w = os.pipe()
    idle = ParentWatch(quiet_r, fired.clear)
    idle.start()
    idle.stop()  # joins at once; never fired
    assert fired.is_set()
    os.close(quiet_r)
    os.close(quiet_w)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_die_with_parent_kills_the_orphan() -> None:
    # The middle process starts a grandchild that asks for SIGKILL on its parent's death,
    # prints its pid, then exits: the grandchild must not outlive it.
    grandchild = (
        "import os, sys, time\n"
        "from globus_compute.lifeline import die_with_parent\n"
        "assert die_with_parent()\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    middle = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}], stdout=subprocess.PIPE,"
        " text=True)\n"
        "print(p.stdout.readline().strip(), flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", middle], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the orphan outlived its parent"
        threading.Event().wait(0.05)
    assert die_with_parent.__name__  # the call exists on every platform
