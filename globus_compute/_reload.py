"""What ``Executor.reload_tasks`` asks the service: a task group's ids, then their outcomes.

Reload is how a user gets results back after their process died (the service keeps results
until they are fetched): list the group's tasks, resolve the finished ones at once, and hand
the rest to the poller like freshly submitted tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from globus_compute._poller import resolve_future
from globus_compute.future import ComputeFuture

log = logging.getLogger(__name__)


def fetch_task_group(client: Any, task_group_id: str) -> list[str]:
    """The ids of a task group's tasks, in the service's order.

    Raises:
        ValueError: The service answered for another task group.
    """
    document = client.get_task_group(task_group_id)
    if str(document.get("taskgroup_id")) != task_group_id:
        raise ValueError(f"Unexpected task group in response: {document.get('taskgroup_id')}")
    task_ids = [str(task["id"]) for task in document.get("tasks") or []]
    if not task_ids:
        log.warning("Task group %s has no tasks", task_group_id)
    return task_ids


def resolve_finished(
    client: Any,
    pairs: list[tuple[str, ComputeFuture]],
    chunk_size: int,
    on_resolved: Callable[[int, int], None],
) -> list[tuple[str, ComputeFuture]]:
    """Resolve the reloaded tasks that already finished; return the ones still pending.

    Args:
        client: The Executor's Client (``get_batch_result``).
        pairs: ``(task_id, future)`` of the reloaded tasks.
        chunk_size: Most task ids per request.
        on_resolved: Called with ``(succeeded, failed)`` counts after each request.
    """
    pending: list[tuple[str, ComputeFuture]] = []
    for start in range(0, len(pairs), chunk_size):
        part = pairs[start : start + chunk_size]
        answers = client.get_batch_result([tid for tid, _ in part])
        succeeded = failed = 0
        for task_id, future in part:
            answer = answers.get(task_id)
            if answer is None or answer.get("pending", True):
                pending.append((task_id, future))
                continue
            outcome = resolve_future(future, answer)
            succeeded += outcome is True
            failed += outcome is False
        on_resolved(succeeded, failed)
    return pending
