"""The hosted-service-shaped path: the reference client's batch_run and get_batch_result.

The reference figure is the hosted Globus Compute ceiling implied by its documented limits
(20 requests / 10 s per client, batches of 128): 256 tasks/s.
"""

from __future__ import annotations

import time

from benchmarks.harness import Figure, Report, repeat
from benchmarks.tasks import noop

BATCH = 128
BATCHES = 40
HOSTED_CEILING = 20 / 10 * BATCH


def _reference_client(local: object):  # type: ignore[no-untyped-def]
    import globus_sdk
    from globus_compute_sdk import Client

    client = Client(
        authorizer=globus_sdk.AccessTokenAuthorizer(local.token),  # type: ignore[attr-defined]
        do_version_check=False,
    )
    for inner in (client._compute_web_client.v2, client._compute_web_client.v3):
        inner.base_url = local.base_url  # type: ignore[attr-defined]
    return client


def run(report: Report, local: object, repeats: int = 3) -> None:
    try:
        client = _reference_client(local)
    except ImportError:
        print("  (reference globus-compute-sdk not installed: service benchmark skipped)")
        return
    endpoint_id = local.endpoint_id  # type: ignore[attr-defined]
    function_id = client.register_function(noop)
    task_ids: list[str] = []

    def accept_rate() -> float:
        start = time.perf_counter()
        for _ in range(BATCHES):
            batch = client.create_batch()
            for i in range(BATCH):
                batch.add(function_id, args=(i,))
            response = client.batch_run(endpoint_id, batch)
            task_ids.extend(response["tasks"][function_id])
        return BATCHES * BATCH / (time.perf_counter() - start)

    def answer_rate() -> float:
        # A fresh client each time: the reference Client caches finished tasks and would
        # answer a second round without asking the service.
        reader = _reference_client(local)
        start = time.perf_counter()
        for i in range(0, len(task_ids), BATCH):
            reader.get_batch_result(task_ids[i : i + BATCH])
        return len(task_ids) / (time.perf_counter() - start)

    accepted, spread = repeat(accept_rate, repeats)
    report.add(
        Figure(
            name="service accepts (reference batch_run, 128/batch)",
            unit="tasks/s",
            ours=accepted,
            reference=HOSTED_CEILING,
            reference_name="hosted limit 20 req/10 s",
            spread=spread,
        )
    )
    answered, spread = repeat(answer_rate, repeats)
    report.add(
        Figure(
            name="service answers (reference get_batch_result, 128/call)",
            unit="tasks/s",
            ours=answered,
            reference=HOSTED_CEILING,
            reference_name="hosted limit 20 req/10 s",
            spread=spread,
        )
    )
