"""The service killed with SIGKILL mid-run and restarted on the same state dir and port.

Why: every accepted submission is durable before the HTTP answer, so a service crash must lose
nothing; and an Executor that keeps running across the gap (submitter and poller retrying) must
end with every future resolved exactly once, including tasks submitted while the service was
down. The endpoint agent rides out the gap too, with its own retries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

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

SUBMITTER_LOG = "globus_compute.executor.submitter"

TASKS = 400
TASK_S = 0.01


def test_executor_rides_out_a_service_restart(local_stack: Callable[..., LocalCompute]) -> None:
    local = local_stack(workers=2)
    client = source_client(local)
    port = local.base_url
    ledger = Ledger()
    with local.executor(client=client) as ex:
        first = ledger.track(ex.submit(square_after, x, TASK_S) for x in range(TASKS // 2))
        ledger.wait_resolved(20)
        assert local.service is not None
        local.service.kill()
        # Submitted while the service is down: the submitter must retry until it is back.
        second = ledger.track(ex.submit(square_after, x, TASK_S) for x in range(TASKS // 2, TASKS))
        resolved_at_kill = ledger.resolved
        local.start_service()
        assert local.base_url == port, "the service must come back on the same port"
        futures = first + second
        wait_all(futures)
        task_group_id = ex.task_group_id

    ledger.assert_each_once(futures)
    assert_distinct_task_ids(futures)
    results, errors = outcomes(futures)
    assert (len(results), len(errors)) == (TASKS, 0), errors[:3]
    assert results == [(x, x * x) for x in range(TASKS)]
    assert resolved_at_kill < TASKS
    # Every future's task is in the group; a submit whose answer was lost to the kill would
    # show up here as extra (orphan) tasks, which the SDK's transient retry can create.
    held = group_task_ids(client, task_group_id)
    assert set(f.task_id for f in futures) <= set(held)
    print(f"service restart: {TASKS} futures, {len(held)} tasks in group, {resolved_at_kill} done")


class _ResendSeen(logging.Handler):
    """Sets ``seen`` when the submitter says it is resending a batch to an unreachable service."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "unreachable" in record.getMessage():
            self.seen.set()


@pytest.fixture
def resend_seen() -> Iterator[threading.Event]:
    handler = _ResendSeen()
    logger = logging.getLogger(SUBMITTER_LOG)
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)


def test_submits_outlast_the_sdk_retry_budget(
    local_stack: Callable[..., LocalCompute], resend_seen: threading.Event
) -> None:
    """Regression: a batch sent while the service was down failed once globus-sdk's own
    retries (8-23 s) ran out, although a restart can take longer; the submitter now resends."""
    local = local_stack(workers=2)
    client = source_client(local)
    ledger = Ledger()
    with local.executor(client=client) as ex:
        warm = ledger.track([ex.submit(square_after, -1)])
        wait_all(warm)  # the function is registered; only task submits cross the outage
        assert local.service is not None
        local.service.kill()
        futures = ledger.track(ex.submit(square_after, x) for x in range(100))
        # The service stays down until globus-sdk has given up at least once.
        assert resend_seen.wait(60), "the submitter never reported resending the batch"
        assert not any(f.done() for f in futures), "a batch failed during the outage"
        local.start_service()
        wait_all(futures)

    ledger.assert_each_once(warm + futures)
    results, errors = outcomes(futures)
    assert (len(results), len(errors)) == (100, 0), errors[:3]
    assert results == [(x, x * x) for x in range(100)]
