"""The endpoint agent killed with SIGKILL mid-run, then restarted under the same name.

Why: an endpoint host reboots or the agent is OOM-killed while it holds claimed tasks. The
service must give those tasks back (re-queue them within ``max_retries_on_system_failure``,
else fail them with ``EndpointLost`` text naming what happened), the restarted agent (same name,
so same endpoint id) must pick up the rest, and the Executor, which saw none of this, must end
with every future resolved exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute
from tests.support.faults import (
    Ledger,
    assert_distinct_task_ids,
    group_task_ids,
    outcomes,
    source_client,
    square_after,
    wait_all,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TASKS = 300
#: Long enough that the agent holds running and claimed-ahead tasks when it dies.
TASK_S = 0.03


@pytest.mark.parametrize("retries", [1, 0])
def test_killed_agent_loses_no_task(local_stack: Callable[..., LocalCompute], retries: int) -> None:
    local = local_stack(workers=2, lease_s=2, max_retries_on_system_failure=retries)
    endpoint_id = local.endpoint_id
    client = source_client(local)
    ledger = Ledger()
    with local.executor(client=client) as ex:
        futures = ledger.track(ex.submit(square_after, x, TASK_S) for x in range(TASKS))
        ledger.wait_resolved(20)
        assert local.endpoint is not None
        local.endpoint.kill()
        killed_at = ledger.resolved
        local.start_endpoint()
        assert local.endpoint_id == endpoint_id, "same name must keep the endpoint id"
        wait_all(futures)
        task_group_id = ex.task_group_id

    ledger.assert_each_once(futures)
    assert_distinct_task_ids(futures)
    assert sorted(group_task_ids(client, task_group_id)) == sorted(f.task_id for f in futures)
    results, errors = outcomes(futures)
    for x, future in enumerate(futures):
        if future.exception(timeout=0) is None:
            assert future.result(timeout=0) == (x, x * x)
    assert killed_at < TASKS, "the agent was killed after the run had already finished"
    print(f"agent kill (retries={retries}): {len(results)} ok, {len(errors)} EndpointLost")
    if retries:
        assert (len(results), len(errors)) == (TASKS, 0), errors[:3]
    else:
        # The tasks the dead agent held (running or claimed ahead) fail; the rest succeed.
        assert errors, "with no retries, the tasks the killed agent held must fail"
        assert len(results) + len(errors) == TASKS
        for exc in errors:
            assert isinstance(exc, TaskExecutionFailed), repr(exc)
            assert "EndpointLost" in str(exc), str(exc)
