"""An engine that runs tasks in threads of the agent process.

Cheapest possible dispatch (no IPC at all), for I/O-bound functions, tests and tiny machines.
The price is isolation: a task that crashes the interpreter (``os._exit``, a segfault) takes the
whole agent with it, and CPU-bound tasks share one GIL. Use the process engine for those.

Results are batched like the process engine's: finished results collect in a list and a single
delivery thread hands everything that accumulated to the sink in one call.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.endpoint.execution import TaskRunner
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.protocol.agent import ClaimedTask, TaskResult, WorkerStatus

log = logging.getLogger(__name__)

#: How long the delivery thread sleeps between checks of its stop event when idle.
IDLE_WAIT_S = 0.5


class ThreadEngine(Engine):
    """Runs tasks on a ``ThreadPoolExecutor`` of ``workers`` threads.

    Args:
        workers: Number of threads; defaults to the CPU count.
    """

    name = "thread"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._context: EngineContext | None = None
        self._runner: TaskRunner | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._results_ready = threading.Condition(self._lock)
        self._finished: list[TaskResult] = []
        self._outstanding = 0
        self._running = 0
        self._stop = threading.Event()
        self._delivery: threading.Thread | None = None
        self._lifecycle = Lifecycle("the thread engine")

    def start(self, context: EngineContext) -> None:
        with self._lock:
            self._lifecycle.begin_start()
            self._context = context
            self._runner = TaskRunner(
                context.endpoint_id, allowed_serializers=context.allowed_serializers
            )
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="engine-thread-worker")
            self._delivery = threading.Thread(
                target=self._delivery_loop, name="engine-thread-results"
            )
            self._delivery.start()
            self._lifecycle.started()

    def submit(self, tasks: list[ClaimedTask]) -> None:
        with self._lock:
            self._lifecycle.require_running()
            self._outstanding += len(tasks)
            assert self._pool is not None
            for task in tasks:
                self._pool.submit(self._run, task)

    def status(self) -> WorkerStatus:
        with self._lock:
            queued = self._outstanding - self._running - len(self._finished)
            return {
                "total_workers": self.workers,
                "idle_workers": max(0, self.workers - self._running),
                "pending_tasks": max(0, queued),
                "outstanding_tasks": self._outstanding,
                "managers": 1,
            }

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._lifecycle.stop() is State.STOPPED:
                return
            self._stop.set()
            self._results_ready.notify_all()
        if self._pool is not None:
            # Queued tasks are dropped; running ones finish in their threads (Python cannot
            # interrupt a thread), and their results are discarded.
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._delivery is not None:
            self._delivery.join(timeout)

    def _run(self, task: ClaimedTask) -> None:
        assert self._runner is not None
        with self._lock:
            self._running += 1
        result = self._runner.run(task)
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
