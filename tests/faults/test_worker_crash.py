"""A worker process that dies inside a task fails that task only.

Why: a user function that calls ``os._exit`` or crashes the interpreter (a segfault in a C
extension) takes its worker process with it. The endpoint must notice, fail exactly that task
with ``WorkerLost`` text, replace the worker, and keep running everything else; the Executor
must go on resolving futures as if nothing happened.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute
from tests.support.faults import Ledger, assert_distinct_task_ids, outcomes, source_client, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TASKS = 200


def die_on(x: int, doomed: list[int], how: str) -> tuple[int, int]:
    """Return ``(x, x*x)``, unless ``x`` is doomed: then kill this worker process."""
    import os
    import signal

    if x in doomed:
        if how == "exit":
            os._exit(1)
        os.kill(os.getpid(), signal.SIGSEGV)
    return (x, x * x)


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_dying_worker_fails_only_its_task(
    local_stack: Callable[..., LocalCompute], how: str
) -> None:
    local = local_stack(workers=2)
    doomed = [7, 61, 150]
    ledger = Ledger()
    with local.executor(client=source_client(local)) as ex:
        futures = ledger.track(ex.submit(die_on, x, doomed, how) for x in range(TASKS))
        wait_all(futures)
        # The executor (and the endpoint, with replacement workers) keeps working afterwards.
        after = ledger.track(ex.submit(die_on, x, [], how) for x in range(TASKS, TASKS + 20))
        wait_all(after)

    everything = futures + after
    ledger.assert_each_once(everything)
    assert_distinct_task_ids(everything)
    for x, future in enumerate(everything):
        if x in doomed:
            exc = future.exception(timeout=0)
            assert isinstance(exc, TaskExecutionFailed), repr(exc)
            assert "WorkerLost" in str(exc), str(exc)
        else:
            assert future.result(timeout=0) == (x, x * x)
    results, errors = outcomes(everything)
    assert (len(results), len(errors)) == (TASKS + 20 - len(doomed), len(doomed))
    print(f"worker {how}: {len(results)} ok, {len(errors)} WorkerLost")
