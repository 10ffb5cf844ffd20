"""What ``Executor.reload_tasks`` asks the service: a task group's ids, then their outcomes.

Reload is how a user gets results back after their process died (the service keeps results
until they are fetched): list the group's tasks, resolve the finished ones at once, and hand
the rest to the result watcher like freshly submitted tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from globus_compute.errors import InvalidServiceResponse
from globus_compute.executor.future import ComputeFuture, resolve
from globus_compute.protocol.ids import canonical_uuid

if TYPE_CHECKING:
    from globus_compute.executor.client_protocol import ExecutorClient

log = logging.getLogger(__name__)

__all__ = ["fetch_task_group", "resolve_finished"]


def fetch_task_group(client: ExecutorClient[Any], task_group_id: str) -> list[str]:
    """The ids of a task group's tasks, in the service's order.

    Raises:
        InvalidServiceResponse: The service answered for another task group, or with a
            document that does not list task ids.
    """
    document = client.get_task_group(task_group_id)
    if not isinstance(document, dict) or str(document.get("taskgroup_id")) != task_group_id:
        got = document.get("taskgroup_id") if isinstance(document, dict) else document
        raise InvalidServiceResponse(f"Unexpected task group in response: {got}")
    tasks = document.get("tasks") or []
    if not isinstance(tasks, list):
        raise InvalidServiceResponse(f"Task group {task_group_id} lists no tasks: {tasks!r}")
    task_ids: list[str] = []
    for task in tasks:
        task_id = canonical_uuid(task.get("id")) if isinstance(task, dict) else None
        if task_id is None:
            raise InvalidServiceResponse(
                f"Task group {task_group_id} lists a malformed task: {task!r}"
            )
        task_ids.append(task_id)
    if not task_ids:
        log.warning("Task group %s has no tasks", task_group_id)
    return task_ids


def resolve_finished(
    client: ExecutorClient[Any],
    pairs: list[tuple[str, ComputeFuture]],
    chunk_size: int,
    on_resolved: Callable[[int, int], None],
) -> list[tuple[str, ComputeFuture]]:
    """Resolve the reloaded tasks that already finished; return the ones still pending.

    Args:
        client: The Executor's client (``get_task_outcomes``).
        pairs: ``(task_id, future)`` of the reloaded tasks.
        chunk_size: Most task ids per request.
        on_resolved: Called with ``(succeeded, failed)`` counts after each request.
    """
    pending: list[tuple[str, ComputeFuture]] = []
    for start in range(0, len(pairs), chunk_size):
        part = pairs[start : start + chunk_size]
        outcomes = client.get_task_outcomes([tid for tid, _ in part])
        succeeded = failed = 0
        for task_id, future in part:
            outcome = outcomes.get(task_id)
            if outcome is None or outcome.pending:
                pending.append((task_id, future))
                continue
            ok = resolve(future, outcome)
            succeeded += ok is True
            failed += ok is False
        on_resolved(succeeded, failed)
    return pending
