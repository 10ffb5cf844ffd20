"""The contract between the endpoint agent and whatever runs its tasks.

An engine receives batches of claimed tasks and hands back batches of results. The agent never
knows whether tasks run in threads, in local worker processes or on a cluster, so adding an
engine (for example one built on Parsl) means implementing :class:`Engine` and registering it in
:data:`globus_compute.endpoint.engines.ENGINES`; nothing else changes.

Rules every engine keeps:

- ``submit`` never blocks on task execution and never raises for a bad task; each task ends in
  exactly one :class:`~globus_compute.protocol.agent.TaskResult` delivered through
  ``EngineContext.result_sink`` (a failed one if anything went wrong with it).
- Results are delivered in batches (lists), from a thread the engine owns. The sink is cheap and
  thread-safe; it may be called from any engine thread.
- A task whose executor died (worker process, node, pilot job) is re-run while its attempts stay
  within ``1 + max_retries_on_system_failure`` (counting the service's ``attempt`` number), and
  otherwise fails with ``WorkerLost`` text (:func:`~globus_compute.protocol.results.lost_task_text`
  of the :func:`~globus_compute.protocol.results.worker_lost_reason` of each attempt).
- A task a worker process ran counts as run when that process dies, whether it died while
  running the task or after finishing it with the result not yet sent: the engine never runs
  it again beyond the budget above, so with ``max_retries_on_system_failure=0`` a task runs at
  most once (a finished task whose result died with its worker fails with ``WorkerLost`` text
  saying so).
- While ``EngineContext.leases_current()`` is False (the agent has not heard from the service
  for a lease: the service may have given its tasks away), no task starts; tasks the service
  has already resolved are then taken back with :meth:`Engine.drop` before they start.
- Every result document is built by :mod:`globus_compute.protocol.results`.
- The engine's state follows :class:`~globus_compute.endpoint.lifecycle.Lifecycle`: ``start``
  once, ``submit`` only while running, ``shutdown`` from any state (also after a ``start`` that
  failed halfway) is idempotent and joins every thread and process the engine started. Tasks
  still running are abandoned; their leases expire at the service, which re-queues or fails them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection
from dataclasses import dataclass

from globus_compute.protocol.agent import ClaimedTask, TaskResult, WorkerStatus

#: How results leave an engine: one call per batch.
ResultSink = Callable[[list[TaskResult]], None]


@dataclass(frozen=True)
class EngineContext:
    """What an engine learns from the agent when it starts.

    Attributes:
        endpoint_id: The registered endpoint, reported in every result's ``details``.
        result_sink: Called with each batch of finished results.
        max_retries_on_system_failure: Extra runs allowed for a task lost with its worker (the
            reference endpoint's setting name); 0 fails it on the first loss.
        leases_current: Whether the agent's leases are known to run; while False no task may
            start (checked before each start, or each chunk of starts).
    """

    endpoint_id: str
    result_sink: ResultSink
    max_retries_on_system_failure: int = 0
    leases_current: Callable[[], bool] = lambda: True


class Engine(abc.ABC):
    """Runs claimed tasks somewhere and reports their results in batches.

    Lifecycle: construct (configuration only; no threads or processes) -> ``start(context)``
    once -> any number of ``submit``/``status`` calls from any thread -> ``shutdown()``, kept
    by a :class:`~globus_compute.endpoint.lifecycle.Lifecycle` so that every engine raises the
    same errors for misuse.
    """

    #: The name the agent's ``--engine`` option selects this engine by.
    name: str = ""

    @abc.abstractmethod
    def start(self, context: EngineContext) -> None:
        """Start workers and result delivery.

        Raises:
            RuntimeError: If called twice or after ``shutdown``. Any other exception means the
                start failed halfway; ``shutdown`` then stops whatever was started.
        """

    @abc.abstractmethod
    def submit(self, tasks: list[ClaimedTask]) -> None:
        """Queue tasks for execution and return at once.

        Raises:
            RuntimeError: If the engine is not running.
        """

    @abc.abstractmethod
    def status(self) -> WorkerStatus:
        """A snapshot of workers and queued tasks, as sent in heartbeats; works before ``start``.

        ``outstanding_tasks`` counts every submitted task whose result has not yet been passed
        to the sink; the agent uses it to decide how much more work to claim.
        """

    def worker_slots(self) -> int:
        """How many workers the agent should claim work for.

        The connected workers, by default. An engine that starts workers only once it has
        tasks (a batch scheduler's blocks) answers with the workers it would start, or it
        would never be given the work that starts them.
        """
        return self.status()["total_workers"]

    def drop(self, task_ids: Collection[str]) -> int:
        """Forget submitted tasks that have not started; returns how many were dropped.

        The service has already resolved them (no result is expected), so they produce no
        result and leave ``outstanding_tasks``. Tasks already running, or unknown, are left
        alone. The default drops nothing: an engine that hands tasks on at once (to Parsl's
        interchange, say) cannot take them back.
        """
        return 0

    @abc.abstractmethod
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop workers and threads, waiting up to about ``timeout`` seconds; idempotent."""


def attempts_allowed(task: ClaimedTask, max_retries_on_system_failure: int) -> int:
    """How many more times this engine may run ``task`` in total, counting the current run.

    The service's ``attempt`` counts runs lost with a whole endpoint; together with local
    worker losses they share one budget of ``1 + max_retries_on_system_failure`` runs.
    """
    used_before = max(0, int(task.get("attempt", 1) or 1) - 1)
    return max(1, 1 + max_retries_on_system_failure - used_before)
