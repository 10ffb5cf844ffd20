"""Every process the embedded stack starts dies with its owner (issue 14, item 8).

Why: ``LocalCompute`` (and ``globus-compute-local up``) start a service, an agent, the agent's
forkserver and its workers. When the owner is killed (SIGTERM from ``timeout`` or a batch
system's time limit, or SIGKILL), or stops the stack while a task still runs, none of them may
linger, and the owner's interpreter must exit promptly, not wait on pipes the stragglers hold.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.local import LocalCompute
from tests.support.faults import logged_run, run_starts, source_client, wait_until

psutil = pytest.importorskip("psutil")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: How long the stack's processes may take to notice their owner died and exit.
DIE_WITH_OWNER_S = 15.0
#: ``LocalCompute.stop()`` with a task still running: the documented bound plus scheduling slack.
STOP_BOUND_S = 12.0
#: From the owner script's last statement to its exit.
EXIT_BOUND_S = 5.0

OWNER_SCRIPT = """
import json, sys, time
import psutil
from globus_compute.local import LocalCompute
from tests.support.faults import logged_run, run_starts, source_client, wait_until

state_dir, runs, mode = sys.argv[1:]
local = LocalCompute(workers=2, state_dir=state_dir).start()
client = source_client(local)
fid = client.register_function(logged_run)
client.run(runs, 0, 300, endpoint_id=local.endpoint_id, function_id=fid)
wait_until(lambda: len(run_starts(runs)) == 1, "the task to start")
pids = [p.pid for p in psutil.Process().children(recursive=True)]
print(json.dumps(pids), flush=True)
if mode == "stop":
    local.stop()
    print("stopped", time.monotonic(), flush=True)
else:
    time.sleep(120)  # the owner is killed while it waits here
"""


def _alive(pids: list[int]) -> list[int]:
    """The pids still running (zombies waiting to be reaped count as gone)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _start_owner(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "owner.py"
    script.write_text(OWNER_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    owner = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "state"), str(tmp_path / "runs.log"), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line, f"the owner script failed (exit code {owner.wait(30)})"
    pids = json.loads(line)
    # service, agent, forkserver, two workers (and perhaps a resource tracker)
    assert len(pids) >= 5, pids
    return owner, pids


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_stack_dies_with_its_killed_owner(tmp_path: Path, how: signal.Signals) -> None:
    owner, pids = _start_owner(tmp_path, "wait")
    try:
        owner.send_signal(how)
        owner.wait(10)
        started = time.monotonic()
        wait_until(lambda: not _alive(pids), "the stack to die", timeout=DIE_WITH_OWNER_S)
        print(f"owner {how.name}: {len(pids)} processes gone in {time.monotonic() - started:.1f} s")
    finally:
        for pid in _alive(pids):
            os.kill(pid, signal.SIGKILL)
        if owner.poll() is None:
            owner.kill()


def test_stop_with_a_running_task_is_prompt_and_leaves_no_process(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    # Only the stack's processes: earlier tests in this process may have left their own
    # children (a multiprocessing forkserver and resource tracker live as long as it does).
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    local = local_stack(workers=2)
    runs = str(tmp_path / "runs.log")
    client = source_client(local)
    fid = client.register_function(logged_run)
    client.run(runs, 0, 300, endpoint_id=local.endpoint_id, function_id=fid)
    wait_until(lambda: len(run_starts(runs)) == 1, "the task to start")
    pids = [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert len(pids) >= 5, pids
    started = time.monotonic()
    local.stop()
    took = time.monotonic() - started
    left = _alive(pids)
    print(f"stop with a running task: {took:.1f} s, {len(left)} of {len(pids)} processes left")
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert took < STOP_BOUND_S
    assert left == []


def test_the_owner_exits_promptly_after_stop(tmp_path: Path) -> None:
    owner, pids = _start_owner(tmp_path, "stop")
    try:
        assert owner.stdout is not None
        stopped = owner.stdout.readline().split()
        assert stopped and stopped[0] == "stopped", "the owner's stop() failed"
        owner.wait(60)
        took = time.monotonic() - float(stopped[1])
        print(f"owner exit after stop(): {took:.2f} s; {len(_alive(pids))} processes left")
        assert took < EXIT_BOUND_S
        assert _alive(pids) == []
    finally:
        for pid in _alive(pids):
            os.kill(pid, signal.SIGKILL)
        if owner.poll() is None:
            owner.kill()


SDK_EXIT_SCRIPT = """
import sys, time
from globus_compute.local import LocalCompute
from tests.support.faults import logged_run, run_starts, source_client, wait_until

state_dir, runs = sys.argv[1:]
local = LocalCompute(workers=1, state_dir=state_dir).start()
ex = local.executor(client=source_client(local))
future = ex.submit(logged_run, runs, 0, 300)
wait_until(lambda: len(run_starts(runs)) == 1, "the task to start")
local.service.kill()
print("service killed", time.monotonic(), flush=True)
# Leave without shutting anything down: the interpreter's exit must not wait for retries.
"""


def test_the_owner_exits_promptly_with_the_service_gone(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(SDK_EXIT_SCRIPT)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "state"), str(tmp_path / "runs.log")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    try:
        assert owner.stdout is not None
        killed = owner.stdout.readline().split()
        assert killed[:2] == ["service", "killed"], "the owner script failed"
        owner.wait(90)
        took = time.monotonic() - float(killed[2])
        print(f"owner exit with the service gone: {took:.1f} s")
        assert took < EXIT_BOUND_S
    finally:
        if owner.poll() is None:
            owner.kill()
