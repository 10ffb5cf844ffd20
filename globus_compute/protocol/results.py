"""The result documents an endpoint reports, and the texts of tasks that were lost.

Every task ends in exactly one :class:`~globus_compute.protocol.agent.TaskResult`: a success
carries one serialized value, a failure carries text, never a pickled exception (the submitter
may run another Python, and the service never unpickles user data). The texts of lost tasks
name the exception type first, as a traceback's last line does, so the SDK and users can tell
what happened from the first words.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from globus_compute.errors import EndpointLost, WorkerLost
from globus_compute.protocol.agent import TaskResult
from globus_compute.protocol.states import TaskState

__all__ = [
    "completion_time",
    "endpoint_lost_text",
    "failed_result",
    "lost_task_text",
    "success_result",
    "worker_lost_reason",
]

_ENGINE_FAILURE_TOP = "+" * 68
_ENGINE_FAILURE_BOTTOM = "-" * 68

# The wire strings, looked up once: every task's result is built here, in the worker's hot path,
# and an enum member's ``.value`` costs an attribute lookup through a descriptor each time.
_SUCCESS: str = TaskState.SUCCESS.value
_FAILED: str = TaskState.FAILED.value


def completion_time(now: float | None = None) -> str:
    """Unix seconds as the string the wire carries in ``completion_t``."""
    return repr(time.time() if now is None else now)


def success_result(
    task_id: str, serialized: str, details: dict[str, Any], completion_t: str | None = None
) -> TaskResult:
    """A finished task's document: one serialized value."""
    return {
        "task_id": task_id,
        "status": _SUCCESS,
        "result": serialized,
        "completion_t": completion_t or completion_time(),
        "details": details,
    }


def failed_result(
    task_id: str, text: str, details: dict[str, Any], completion_t: str | None = None
) -> TaskResult:
    """A failed task's document: traceback (or failure reason) text."""
    return {
        "task_id": task_id,
        "status": _FAILED,
        "exception": text,
        "completion_t": completion_t or completion_time(),
        "details": details,
    }


def lost_task_text(failures: list[str]) -> str:
    """The failure text of a task whose executor died on every allowed attempt.

    Engine-level failures are framed by a line of 68 ``+`` and one of 68 ``-``, one block per
    attempt, as the reference endpoint reports them, so users can tell them apart from their own
    tracebacks.
    """
    blocks = []
    for number, reason in enumerate(failures, start=1):
        label = "final attempt" if number == len(failures) and number > 1 else str(number)
        header = f"Traceback from attempt: {label}\n" if len(failures) > 1 else ""
        blocks.append(f"{_ENGINE_FAILURE_TOP}\n{header}{reason}\n{_ENGINE_FAILURE_BOTTOM}\n")
    return "".join(blocks)


def worker_lost_reason(
    task_id: str, worker: str, exitcode: int | None, *, finished: bool = False
) -> str:
    """``repr`` of the WorkerLost of a task whose worker process died under it.

    Args:
        finished: The worker had run the task to its end, but died before sending the result.
    """
    if exitcode is None:
        how = "with an unknown exit status"
    elif exitcode < 0:
        how = f"from signal {_signal_name(-exitcode)}"
    else:
        how = f"with exit code {exitcode}"
    if finished:
        what = f"after it finished task {task_id}, before sending the result"
    else:
        what = f"while running task {task_id}"
    return repr(WorkerLost(f"{worker} died {how} {what}"))


#: Why the service gave up on a task an endpoint held, by cause.
_ENDPOINT_LOST_CAUSES = {
    "expired": "the endpoint {endpoint} stopped heartbeating, so its lease on the task expired",
    "restarted": (
        "the endpoint {endpoint} was restarted while running it (the previous agent process "
        "stopped heartbeating)"
    ),
    "stopped": "the endpoint {endpoint} was stopped before the task finished",
    "deleted": "the endpoint {endpoint} was deleted",
}


def endpoint_lost_text(
    task_id: str, endpoint_id: str, cause: str, attempts: int | None = None
) -> str:
    """The failure text of a task the service took back from its endpoint for good.

    Args:
        cause: ``expired``, ``restarted``, ``stopped`` or ``deleted``.
        attempts: How many times the task was started, when known.
    """
    why = _ENDPOINT_LOST_CAUSES[cause].format(endpoint=endpoint_id)
    after = f" after {attempts} attempt(s)" if attempts is not None else ""
    reason = f"task {task_id} was lost{after}: {why}."
    return f"{EndpointLost.__module__}.{EndpointLost.__name__}: {reason}\n"


def _signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} ({signum})"
    except ValueError:
        return str(signum)
