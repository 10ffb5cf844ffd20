"""The client process killed with SIGKILL mid-run; a new process reloads its task group.

Why: a laptop sleeps, a notebook kernel dies, a batch job hits its wall time. Tasks the service
accepted keep running on the endpoint and their results stay on the service, so
``Executor.reload_tasks(task_group_id)`` from anywhere must recover every one of them, each
once, with its own value.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.local import LocalCompute
from tests.support.faults import Ledger, outcomes, source_client, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TASKS = 400
CHUNK = 20
#: The client is killed once this many of its tasks were accepted (the rest are in flight).
KILL_AFTER = 100

CLIENT_SCRIPT = """
import sys
import threading

import globus_sdk

from globus_compute import Client, Executor
from globus_compute.serialize import PureSourceTextInspect


def square_after(x, delay):
    import time

    time.sleep(delay)
    return (x, x * x)


base_url, token, endpoint_id, task_group_id, total, chunk = sys.argv[1:]
client = Client(
    base_url=base_url,
    authorizer=globus_sdk.AccessTokenAuthorizer(token),
    code_serialization_strategy=PureSourceTextInspect(),
    do_version_check=False,
)
ex = Executor(endpoint_id=endpoint_id, client=client, task_group_id=task_group_id)
print("TASK_GROUP", ex.task_group_id, flush=True)
pause = threading.Event()  # never set: the process waits to be killed
futures = []
for start in range(0, int(total), int(chunk)):
    futures += [ex.submit(square_after, x, 0.02) for x in range(start, start + int(chunk))]
    while any(f.task_id is None for f in futures):
        pause.wait(0.005)
    print("ACCEPTED", len(futures), flush=True)
pause.wait(120)
"""


def read_until(proc: subprocess.Popen[str], prefix: str, deadline: float) -> str:
    """The first stdout line of ``proc`` starting with ``prefix``, read with a deadline."""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"the client script never printed {prefix!r} (exit {proc.poll()})")


def test_reload_recovers_every_task_of_a_killed_client(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    local = local_stack(workers=2)
    script = tmp_path / "client_script.py"
    script.write_text(CLIENT_SCRIPT)
    task_group_id = str(uuid.uuid4())
    argv = [sys.executable, str(script), str(local.base_url), str(local.token),
            str(local.endpoint_id), task_group_id, str(TASKS), str(CHUNK)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        assert read_until(proc, "TASK_GROUP", deadline).split()[1] == task_group_id
        accepted = 0
        while accepted < KILL_AFTER:
            accepted = int(read_until(proc, "ACCEPTED", deadline).split()[1])
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    client = source_client(local)
    ledger = Ledger()
    with local.executor(client=client) as ex:
        futures = ledger.track(ex.reload_tasks(task_group_id))
        unfinished_at_reload = sum(not f.done() for f in futures)
        wait_all(futures)

    ledger.assert_each_once(futures)
    results, errors = outcomes(futures)
    assert not errors, errors[:3]
    inputs = [x for x, _ in results]
    assert all(square == x * x for x, square in results)
    assert len(set(inputs)) == len(inputs), "a task was recovered twice"
    assert set(range(accepted)) <= set(inputs), "an accepted task was not recovered"
    assert accepted <= len(futures) <= TASKS
    print(
        f"client crash: killed after {accepted} accepted; reloaded {len(futures)} "
        f"({unfinished_at_reload} still running at reload), all correct"
    )
