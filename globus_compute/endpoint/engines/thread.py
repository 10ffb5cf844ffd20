"""An engine that runs tasks in threads of the agent process.

Cheapest possible dispatch (no IPC at all), for I/O-bound functions, tests and tiny machines.
The price is isolation: a task that crashes the interpreter (``os._exit``, a segfault) takes the
whole agent with it, and CPU-bound tasks share one GIL. Use the process engine for those.

::

    submit(tasks) ──► queue (lock + condition) ──► [engine-thread-worker-i] x workers: run
                        ▲ drop(ids): queued tasks the service resolved      │
    result_sink ◄── [engine-thread-results] ◄── finished list ◄────────────┘

Results are batched like the process engine's: finished results collect in a list and a single
delivery thread hands everything that accumulated to the sink in one call. A task that raises
anything, ``SystemExit`` and ``KeyboardInterrupt`` included, fails with its traceback like any
other (:class:`~globus_compute.endpoint.execution.TaskRunner`), so every task resolves.

Python cannot interrupt a thread, so at shutdown a task still running is abandoned: queued tasks
are dropped, the delivery thread is joined, and the worker threads are daemon threads, joined
for ``timeout`` only, so that a task which never returns cannot keep the agent process alive
after it has handed the task back to the service.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Collection

from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.endpoint.execution import TaskRunner
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.protocol.agent import ClaimedTask, TaskResult, WorkerStatus

log = logging.getLogger(__name__)

#: How long idle threads sleep between checks of their stop event.
IDLE_WAIT_S = 0.5
#: How often idle workers re-check leases in doubt.
LEASE_POLL_S = 0.05


class ThreadEngine(Engine):
    """Runs tasks on ``workers`` threads of this process.

    Args:
        workers: Number of threads; defaults to the CPU count.
    """

    name = "thread"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._context: EngineContext | None = None
        self._runner: TaskRunner | None = None
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._results_ready = threading.Condition(self._lock)
        self._queue: deque[ClaimedTask] = deque()
        self._finished: list[TaskResult] = []
        self._outstanding = 0
        self._running = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._delivery: threading.Thread | None = None
        self._lifecycle = Lifecycle("the thread engine")

    def start(self, context: EngineContext) -> None:
        with self._lock:
            self._lifecycle.begin_start()
            self._context = context
            self._runner = TaskRunner(context.endpoint_id)
            self._delivery = threading.Thread(
                target=self._delivery_loop, name="engine-thread-results"
            )
            self._delivery.start()
            for index in range(self.workers):
                worker = threading.Thread(
                    target=self._worker_loop, name=f"engine-thread-worker-{index}", daemon=True
                )
                worker.start()
                self._workers.append(worker)
            self._lifecycle.started()

    def submit(self, tasks: list[ClaimedTask]) -> None:
        with self._lock:
            self._lifecycle.require_running()
            self._outstanding += len(tasks)
            self._queue.extend(tasks)
            self._work_ready.notify(len(tasks))

    def drop(self, task_ids: Collection[str]) -> int:
        """Take back queued tasks not yet started; see :meth:`Engine.drop`."""
        doomed = set(task_ids)
        with self._lock:
            kept = [task for task in self._queue if task["task_id"] not in doomed]
            dropped = len(self._queue) - len(kept)
            self._queue = deque(kept)
            self._outstanding -= dropped
        return dropped

    def status(self) -> WorkerStatus:
        with self._lock:
            return {
                "total_workers": self.workers,
                "idle_workers": max(0, self.workers - self._running),
                "pending_tasks": len(self._queue),
                "outstanding_tasks": self._outstanding,
                "managers": 1,
            }

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._lifecycle.stop() is State.STOPPED:
                return
            self._stop.set()
            self._queue.clear()  # dropped: the agent hands them back to the service
            self._work_ready.notify_all()
            self._results_ready.notify_all()
        if self._delivery is not None:
            self._delivery.join(max(timeout, IDLE_WAIT_S + 1.0))
        for worker in self._workers:
            worker.join(timeout)
        running = sum(1 for worker in self._workers if worker.is_alive())
        if running:
            log.warning("%d task(s) still running in threads at shutdown; abandoned", running)

    def _worker_loop(self) -> None:
        assert self._context is not None and self._runner is not None
        leases_current = self._context.leases_current
        while True:
            with self._work_ready:
                while not self._stop.is_set() and not (self._queue and leases_current()):
                    self._work_ready.wait(IDLE_WAIT_S if leases_current() else LEASE_POLL_S)
                if self._stop.is_set():
                    return
                task = self._queue.popleft()
                self._running += 1
            result = self._runner.run(task)  # never raises, whatever the task does
            with self._lock:
                self._running -= 1
                self._finished.append(result)
                self._results_ready.notify()

    def _delivery_loop(self) -> None:
        assert self._context is not None
        sink = self._context.result_sink
        while not self._stop.is_set():
            with self._results_ready:
                if not self._finished:
                    self._results_ready.wait(IDLE_WAIT_S)
                    continue
                batch, self._finished = self._finished, []
            try:
                sink(batch)
            except Exception:
                log.exception("the result sink failed; %d results dropped", len(batch))
            with self._lock:
                self._outstanding -= len(batch)
