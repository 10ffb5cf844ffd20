"""Worker processes dying under finished-but-unsent results (issue 14, item 2).

Why: a worker batches the results of short tasks for a couple of milliseconds before sending
them. When it dies in that window (the next task calls ``os._exit``, or the machine SIGKILLs
it), the tasks it had already run must not run again: they keep their results (the worker
keeps them in shared memory until sent), and with ``max_retries_on_system_failure=K`` no task
runs more than ``1 + K`` times, with ``K = 0`` none twice. Each task appends a line to a file
per run (the side channel), so a re-run shows even when its future succeeds.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute
from tests.support.faults import (
    Ledger,
    logged_run,
    outcomes,
    run_starts,
    source_client,
    wait_all,
)

psutil = pytest.importorskip("psutil")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

ROUNDS = 5


def test_a_finished_task_is_not_run_again_when_its_worker_dies(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    """One worker; a fast task A, then B calls ``os._exit(7)`` while A's result is unsent."""
    local = local_stack(workers=1)
    runs = str(tmp_path / "runs.log")
    ledger = Ledger()
    futures = []
    with local.executor(client=source_client(local), batch_size=2) as ex:
        for round_ in range(ROUNDS):
            a, b = 2 * round_, 2 * round_ + 1
            pair = ledger.track(
                [ex.submit(logged_run, runs, a), ex.submit(logged_run, runs, b, 0, "exit")]
            )
            wait_all(pair)
            futures += pair

    ledger.assert_each_once(futures)
    starts = run_starts(runs)
    runs_of_a = [len(starts.get(2 * r, [])) for r in range(ROUNDS)]
    a_ok = sum(1 for f in futures[::2] if f.exception(timeout=0) is None)
    print(f"A ran {runs_of_a} times in {ROUNDS} rounds; A succeeded {a_ok} times")
    assert runs_of_a == [1] * ROUNDS, "a task whose worker died after it finished ran again"
    for future in futures[1::2]:
        exc = future.exception(timeout=0)
        assert isinstance(exc, TaskExecutionFailed) and "WorkerLost" in str(exc), repr(exc)
    assert a_ok == ROUNDS, "A's result, kept before B started, died with the worker"


def _workers(agent_pid: int) -> list[psutil.Process]:
    """The agent's worker processes: the children of its forkserver (forked, so they share its
    command line), or its other children when workers are spawned."""
    found = []
    for child in psutil.Process(agent_pid).children():
        try:
            cmdline = " ".join(child.cmdline())
            if "forkserver" in cmdline:
                found += child.children()
            elif "resource_tracker" not in cmdline:
                found.append(child)
        except psutil.Error:
            continue
    return found


STORM_TASKS = 20_000
KILL_EVERY_S = 0.25
MAX_KILLS = 400


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 1])
def test_a_kill_storm_runs_no_task_more_than_allowed(
    local_stack: Callable[..., LocalCompute], tmp_path: Path, retries: int
) -> None:
    local = local_stack(workers=2, max_retries_on_system_failure=retries)
    assert local.endpoint is not None and local.endpoint.pid is not None
    agent_pid = local.endpoint.pid
    runs = str(tmp_path / "runs.log")
    stop = threading.Event()
    kills = 0

    def storm() -> None:
        nonlocal kills
        rng = random.Random(14)
        while kills < MAX_KILLS and not stop.wait(KILL_EVERY_S):
            workers = _workers(agent_pid)
            if workers:
                try:
                    os.kill(rng.choice(workers).pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass

    killer = threading.Thread(target=storm, name="kill-storm")
    ledger = Ledger()
    with local.executor(client=source_client(local)) as ex:
        killer.start()
        try:
            futures = ledger.track(ex.submit(logged_run, runs, x) for x in range(STORM_TASKS))
            wait_all(futures, timeout=120)
        finally:
            stop.set()
            killer.join(10)

    ledger.assert_each_once(futures)
    results, errors = outcomes(futures)
    runs_per_task = collections.Counter(len(s) for s in run_starts(runs).values())
    too_many = sum(n for count, n in runs_per_task.items() if count > 1 + retries)
    print(
        f"kill storm (retries={retries}): {STORM_TASKS} tasks, {kills} worker kills, "
        f"{len(results)} ok, {len(errors)} WorkerLost, runs per task {dict(runs_per_task)}, "
        f"{too_many} ran more than {1 + retries} time(s)"
    )
    assert kills >= 5, "the storm never got going"
    assert too_many == 0
    for exc in errors:
        assert isinstance(exc, TaskExecutionFailed) and "WorkerLost" in str(exc), repr(exc)
    for x, future in enumerate(futures):
        if future.exception(timeout=0) is None:
            assert future.result(timeout=0) == (x, x * x)
