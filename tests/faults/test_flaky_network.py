"""A flaky network between the client and the service: resets and delays on a fifth of requests.

Why: on real networks connections drop, and the most treacherous drop is the one after the
service has acted on a request but before its answer arrives. Every future must still resolve
exactly once with its own correct value. A submit whose answer was lost is retried (by
globus-sdk, then by the submitter), which can create the batch's tasks a second time on the
service: the retried copy is the one the futures follow; the lost copy's tasks run too, and
nobody waits for them. This test measures how often that happens rather than forbidding it:
preventing it needs an idempotency key on submit, which the reference wire protocol lacks.
"""

from __future__ import annotations

from collections.abc import Callable

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
from tests.support.flaky_proxy import FlakyProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TASKS = 600


def test_every_future_resolves_once_through_a_flaky_proxy(
    local_stack: Callable[..., LocalCompute],
) -> None:
    local = local_stack(workers=2)
    assert local.base_url is not None
    port = int(local.base_url.rsplit(":", 1)[1])
    direct = source_client(local)
    ledger = Ledger()
    with FlakyProxy(port, p_reset_before=0.1, p_reset_after=0.1, max_delay_s=0.01) as proxy:
        client = source_client(local, base_url=proxy.url)
        # Small batches so many submit requests cross the proxy (and some lose their answer).
        with local.executor(client=client, batch_size=25) as ex:
            futures: list = []
            for start in range(0, TASKS, 100):
                futures += ledger.track(
                    ex.submit(square_after, x) for x in range(start, min(start + 100, TASKS))
                )
                ledger.wait_resolved(start)  # keep submits and polls interleaved
            wait_all(futures)
            task_group_id = ex.task_group_id
        stats = proxy.stats.snapshot()

    ledger.assert_each_once(futures)
    assert_distinct_task_ids(futures)
    results, errors = outcomes(futures)
    assert (len(results), len(errors)) == (TASKS, 0), errors[:3]
    assert results == [(x, x * x) for x in range(TASKS)]
    # The proxy really did get in the way, both before and after the service acted.
    assert stats.get("reset_before", 0) >= 1 and stats.get("reset_after", 0) >= 1, stats
    held = group_task_ids(direct, task_group_id)
    assert set(f.task_id for f in futures) <= set(held)
    orphans = len(held) - TASKS
    print(f"flaky network: {TASKS} futures ok; proxy {stats}; {orphans} orphan (duplicate) tasks")
