"""The service down for longer than the lease while its endpoint runs tasks (issue 14, item 1).

Why: the service's outage is not the endpoint's fault. An agent that stayed up, finished its
tasks and kept trying to report them must not see them failed with ``EndpointLost`` because
the *service* could not hear its heartbeats: after a restart the service gives every lease a
fresh ``lease_s`` (the agent's next heartbeat renews what it holds), and the results the agent
delivers then are stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.local import LocalCompute
from tests.support.faults import (
    Ledger,
    logged_run,
    outcomes,
    run_starts,
    source_client,
    wait_all,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LEASE_S = 2.0
#: The fault: the service stays down three leases long (the agent's tasks finish meanwhile).
OUTAGE_S = 3 * LEASE_S
TASKS = 4
TASK_S = 1.0


@pytest.mark.parametrize("retries", [0, 1])
def test_an_outage_longer_than_the_lease_fails_no_task(
    local_stack: Callable[..., LocalCompute], tmp_path: Path, retries: int
) -> None:
    local = local_stack(workers=TASKS, lease_s=LEASE_S, max_retries_on_system_failure=retries)
    runs = str(tmp_path / "runs.log")
    ledger = Ledger()
    with local.executor(client=source_client(local)) as ex:
        futures = ledger.track(ex.submit(logged_run, runs, x, TASK_S) for x in range(TASKS))
        wait_until(lambda: len(run_starts(runs)) == TASKS, "every task to start")
        assert local.service is not None
        local.service.kill()
        time.sleep(OUTAGE_S)  # the fault itself: nothing is waited for here
        local.start_service()
        wait_all(futures)

    ledger.assert_each_once(futures)
    results, errors = outcomes(futures)
    runs_per_task = {x: len(starts) for x, starts in run_starts(runs).items()}
    print(
        f"service outage {OUTAGE_S:.0f} s with lease {LEASE_S:.0f} s (retries={retries}): "
        f"{len(results)} ok, {len(errors)} failed, runs per task {runs_per_task}"
    )
    assert errors == [], [str(e)[:300] for e in errors]
    assert results == [(x, x * x) for x in range(TASKS)]
    assert runs_per_task == {x: 1 for x in range(TASKS)}, "a task ran again after the outage"
