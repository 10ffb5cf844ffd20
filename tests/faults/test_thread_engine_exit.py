"""``SystemExit`` and ``KeyboardInterrupt`` raised by tasks on the thread engine (issue 14,
item 6).

Why: the thread engine runs tasks in the agent's own threads. A task that raises
``SystemExit`` (``sys.exit()`` in a script turned into a function) or ``KeyboardInterrupt``
must fail that task with its traceback, like any other exception, and must not leave the task
"running" for ever, which would renew its lease for ever and hold up the agent's shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute
from tests.support.faults import Ledger, logged_run, outcomes, source_client, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: A stop with nothing left running: SIGTERM, the agent's goodbye, the service's shutdown.
STOP_BOUND_S = 10.0


@pytest.mark.parametrize("how", ["system-exit", "interrupt"])
def test_a_task_raising_a_base_exception_fails_alone_and_stop_is_prompt(
    local_stack: Callable[..., LocalCompute], tmp_path: Path, how: str
) -> None:
    local = local_stack(workers=2, engine="thread")
    runs = str(tmp_path / "runs.log")
    ledger = Ledger()
    with local.executor(client=source_client(local)) as ex:
        doomed = ex.submit(logged_run, runs, -1, 0, how)
        healthy = [ex.submit(logged_run, runs, x) for x in range(20)]
        futures = ledger.track([doomed, *healthy])
        wait_all(futures, timeout=30)

    ledger.assert_each_once(futures)
    results, errors = outcomes(healthy)
    assert (results, errors) == ([(x, x * x) for x in range(20)], [])
    exc = doomed.exception(timeout=0)
    expected = "SystemExit: 3" if how == "system-exit" else "KeyboardInterrupt"
    assert isinstance(exc, TaskExecutionFailed) and expected in str(exc), repr(exc)

    started = time.monotonic()
    local.stop()
    took = time.monotonic() - started
    print(f"{how}: the task failed alone; LocalCompute.stop() took {took:.2f} s")
    assert took < STOP_BOUND_S
