"""The default engine: a pool of worker processes managed here, fed in chunks.

::

    submit(tasks) ──► pending deque ──► [dispatch thread] ── chunk ──► task pipe ──► worker i
                        ▲    (lock + condition)                                       │ runs,
                        │ requeue tasks of a dead worker                              │ batches
    result_sink ◄── [results thread] ◄── result batch ◄── result pipe ◄──────────────┘
                        ▲
                        └── worker i's process sentinel: died -> results it had not sent
                            are read from its shared block; the task it died in (shared-memory
                            index) fails or retries; the rest are requeued; a new worker starts

Why two threads: a send blocks while a worker's task pipe is full, and the worker only reads it
after its results are drained, so the thread that drains results must never be the one that
sends. The dispatch thread never holds the lock while sending.

How much each worker holds: enough queued work for about :data:`QUEUED_WORK_S` seconds, learned
from measured task durations (no-op tasks travel in chunks of hundreds, one-second tasks one at
a time so an idle worker is never stuck behind a busy one's queue).

At most once: a worker sends the results of short tasks in batches, but keeps each one in a
shared-memory block from the moment its task returns (``result_buffer.py``), so when it dies its
finished tasks keep their results. A task it had started with no result anywhere (the one it
died in) counts as one run lost with its worker: re-run only within ``1 +
max_retries_on_system_failure`` runs, else failed with ``WorkerLost`` text. Only tasks it never
started are requeued for free.

While the agent's leases are in doubt (``EngineContext.leases_current``) no chunk is sent, and
:meth:`ProcessEngine.drop` takes back queued tasks the service resolved; the few already sent to
a worker (at most :data:`QUEUED_WORK_S` of work) still run.

Every worker is tied to the agent (see ``worker.py``) and dies with it; :meth:`shutdown` asks
all workers to exit, waits for them together, then terminates and kills what is left.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Collection
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from globus_compute.endpoint.engines.base import Engine, EngineContext, attempts_allowed
from globus_compute.endpoint.engines.result_buffer import ResultBuffer, decode_records
from globus_compute.endpoint.engines.worker import NOTHING_STARTED, last_started, worker_main
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.protocol.agent import ClaimedTask, TaskResult, WorkerStatus
from globus_compute.protocol.results import failed_result, lost_task_text, worker_lost_reason

log = logging.getLogger(__name__)

#: Seconds of queued work each worker should hold so it never idles between chunks.
QUEUED_WORK_S = 0.01
#: Bounds on tasks queued at one worker; the upper one keeps chunks (and pipe writes) small.
MIN_PREFETCH, MAX_PREFETCH = 1, 256
#: Task duration assumed before any was measured.
INITIAL_TASK_S = 0.001
#: How long the threads sleep between checks of their stop event when nothing happens.
IDLE_WAIT_S = 0.5
#: How often the dispatch thread re-checks leases in doubt.
LEASE_POLL_S = 0.05
#: After ``terminate()``, how long a worker may take before it is killed.
TERMINATE_GRACE_S = 1.0


class _WorkerSlot:
    """One worker process and what the engine sent it that has not come back yet."""

    def __init__(self, index: int, generation: int) -> None:
        self.index = index
        self.generation = generation
        self.process: BaseProcess | None = None
        self.task_conn: Connection | None = None
        self.result_conn: Connection | None = None
        self.running: Any = None
        #: The engine's end of the worker's lifeline pipe (the worker dies when it closes).
        self.lifeline: Connection | None = None
        #: Results the worker finished and has not sent yet (read once it died).
        self.unsent: ResultBuffer | None = None
        #: seq -> task, in the order sent; a worker runs its chunks in that order.
        self.assigned: dict[int, ClaimedTask] = {}
        self.next_seq = 0
        self.dead = False
        #: Held while sending, so the results thread never closes the pipe under a send.
        self.send_lock = threading.Lock()

    @property
    def label(self) -> str:
        pid = self.process.pid if self.process else None
        return f"Worker process {pid} (slot {self.index}.{self.generation})"


class ProcessEngine(Engine):
    """Runs tasks in ``workers`` processes started with ``spawn``/``forkserver``.

    Args:
        workers: Number of worker processes; defaults to the CPU count.
        start_method: ``forkserver`` (default where available: fast replacement of dead
            workers) or ``spawn``. Never ``fork``: the agent runs threads.
    """

    name = "process"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        if start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method == "fork":
            raise ValueError("the fork start method is unsafe in a threaded agent")
        self._mp: Any = multiprocessing.get_context(start_method)
        self._context: EngineContext | None = None
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._pending: deque[ClaimedTask] = deque()
        self._slots: list[_WorkerSlot] = []
        self._losses: dict[str, list[str]] = {}
        self._outstanding = 0
        self._task_s = INITIAL_TASK_S
        self._wake_r, self._wake_w = self._mp.Pipe(duplex=False)
        self._threads: list[threading.Thread] = []
        self._lifecycle = Lifecycle("the process engine")

    # --- Engine interface -------------------------------------------------------------------

    def start(self, context: EngineContext) -> None:
        with self._lock:
            self._lifecycle.begin_start()
            self._context = context
        if self._mp.get_start_method() == "forkserver":
            self._mp.set_forkserver_preload(["globus_compute.endpoint.execution"])
        for index in range(self.workers):
            # One at a time, so a start that fails halfway leaves shutdown the ones it started.
            self._slots.append(self._start_worker(index, 0))
        for target, name in (
            (self._dispatch_loop, "engine-process-dispatch"),
            (self._results_loop, "engine-process-results"),
        ):
            thread = threading.Thread(target=target, name=name)
            thread.start()
            self._threads.append(thread)
        with self._lock:
            self._lifecycle.started()

    def submit(self, tasks: list[ClaimedTask]) -> None:
        with self._lock:
            self._lifecycle.require_running()
            self._pending.extend(tasks)
            self._outstanding += len(tasks)
            self._work_ready.notify()

    def drop(self, task_ids: Collection[str]) -> int:
        """Take back queued tasks not yet sent to a worker; see :meth:`Engine.drop`."""
        doomed = set(task_ids)
        with self._lock:
            kept = [task for task in self._pending if task["task_id"] not in doomed]
            dropped = len(self._pending) - len(kept)
            self._pending = deque(kept)
            self._outstanding -= dropped
            for task_id in doomed:
                self._losses.pop(task_id, None)
        return dropped

    def status(self) -> WorkerStatus:
        with self._lock:
            idle = sum(1 for s in self._slots if not s.assigned)
            return {
                "total_workers": self.workers,
                "idle_workers": idle,
                "pending_tasks": len(self._pending),
                "outstanding_tasks": self._outstanding,
                "managers": 1,
            }

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._lifecycle.stop() is State.STOPPED:
                return
            self._stop.set()
            self._work_ready.notify_all()
        self._wake_w.send_bytes(b"x")
        for thread in self._threads:
            thread.join(max(timeout, IDLE_WAIT_S + 1.0))
        self._stop_workers(self._slots, timeout)
        self._wake_r.close()
        self._wake_w.close()

    # --- workers ----------------------------------------------------------------------------

    def _start_worker(self, index: int, generation: int) -> _WorkerSlot:
        assert self._context is not None
        slot = _WorkerSlot(index, generation)
        task_recv, slot.task_conn = self._mp.Pipe(duplex=False)
        slot.result_conn, result_send = self._mp.Pipe(duplex=False)
        lifeline_recv, slot.lifeline = self._mp.Pipe(duplex=False)
        slot.running = self._mp.RawValue("q", NOTHING_STARTED)
        slot.unsent = ResultBuffer.allocate(self._mp)
        slot.process = self._mp.Process(
            target=worker_main,
            args=(
                task_recv,
                result_send,
                slot.running,
                self._context.endpoint_id,
                slot.unsent,
                lifeline_recv,
                self._mp.get_start_method() == "forkserver",
            ),
            name=f"compute-worker-{index}",
        )
        slot.process.start()
        # The child holds its own copies; closing ours lets each side see EOF when the other dies.
        task_recv.close()
        result_send.close()
        lifeline_recv.close()
        return slot

    def _stop_workers(self, slots: list[_WorkerSlot], timeout: float) -> None:
        """Ask every worker to exit, wait for all of them together for up to ``timeout``, then
        terminate (and kill) the rest."""
        for slot in slots:
            if slot.task_conn is not None:
                try:
                    slot.task_conn.send(None)
                except OSError:
                    log.debug("%s was already gone at shutdown", slot.label)
        deadline = time.monotonic() + timeout
        for slot in slots:
            assert slot.process is not None
            slot.process.join(max(0.0, deadline - time.monotonic()))
        left = [slot for slot in slots if slot.process and slot.process.is_alive()]
        for slot in left:
            assert slot.process is not None
            log.warning("%s still running at shutdown; terminating it", slot.label)
            slot.process.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE_S
        for slot in left:
            assert slot.process is not None
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
        for slot in slots:
            for conn in (slot.task_conn, slot.result_conn, slot.lifeline):
                if conn is not None:
                    conn.close()

    # --- dispatch thread --------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        assert self._context is not None
        leases_current = self._context.leases_current
        while not self._stop.is_set():
            with self._work_ready:
                current = leases_current()
                sends = self._plan_chunks() if current else []
                if not sends:
                    self._work_ready.wait(IDLE_WAIT_S if current else LEASE_POLL_S)
                    continue
            for slot, chunk in sends:
                with slot.send_lock:
                    if slot.dead or slot.task_conn is None:
                        continue  # the results thread already requeued this chunk
                    try:
                        slot.task_conn.send(chunk)
                    except OSError:
                        # The worker died; the results thread sees its sentinel and requeues.
                        log.debug("send to a dead worker failed; its tasks will be requeued")

    def _plan_chunks(self) -> list[tuple[_WorkerSlot, list[tuple[int, ClaimedTask]]]]:
        """Assign pending tasks to workers with room (lock held); returns what to send."""
        if not self._pending:
            return []
        prefetch = min(MAX_PREFETCH, max(MIN_PREFETCH, int(QUEUED_WORK_S / self._task_s)))
        slots = sorted(
            (s for s in self._slots if not s.dead and len(s.assigned) < prefetch),
            key=lambda s: len(s.assigned),
        )
        sends = []
        for position, slot in enumerate(slots):
            room = prefetch - len(slot.assigned)
            share = math.ceil(len(self._pending) / (len(slots) - position))
            take = min(room, share)
            # Topping up a busy worker by a task or two costs an IPC message for little gain.
            if take <= 0 or (slot.assigned and take < min(prefetch // 4, len(self._pending))):
                continue
            chunk = []
            for _ in range(take):
                task = self._pending.popleft()
                seq = slot.next_seq
                slot.next_seq += 1
                slot.assigned[seq] = task
                chunk.append((seq, task))
            sends.append((slot, chunk))
            if not self._pending:
                break
        return sends

    # --- results thread ---------------------------------------------------------------------

    def _results_loop(self) -> None:
        assert self._context is not None
        sink = self._context.result_sink
        while not self._stop.is_set():
            by_handle: dict[Any, tuple[_WorkerSlot, bool]] = {}
            for slot in self._slots:
                by_handle[slot.result_conn] = (slot, False)
                assert slot.process is not None
                by_handle[slot.process.sentinel] = (slot, True)
            ready = wait([self._wake_r, *by_handle], IDLE_WAIT_S)
            delivered: list[TaskResult] = []
            died: list[_WorkerSlot] = []
            for handle in ready:
                if handle is self._wake_r:
                    continue
                slot, is_sentinel = by_handle[handle]
                if is_sentinel:
                    died.append(slot)
                else:
                    self._receive(slot, delivered)
            for slot in died:
                self._handle_death(slot, delivered)
            if delivered:
                try:
                    sink(delivered)
                except Exception:
                    log.exception("the result sink failed; %d results dropped", len(delivered))

    def _receive(self, slot: _WorkerSlot, delivered: list[TaskResult]) -> None:
        assert slot.result_conn is not None
        try:
            batch = decode_records(slot.result_conn.recv_bytes())
        except (EOFError, OSError):
            return  # the sentinel reports the death
        self._accept(slot, batch, delivered)

    def _accept(
        self, slot: _WorkerSlot, batch: list[tuple[int, TaskResult]], out: list[TaskResult]
    ) -> None:
        durations = 0.0
        with self._lock:
            for seq, result in batch:
                if slot.assigned.pop(seq, None) is None:
                    continue
                self._outstanding -= 1
                self._losses.pop(result["task_id"], None)
                transitions = result.get("details", {}).get("task_transitions", {})
                durations += transitions.get("execution-end", 0) - transitions.get(
                    "execution-start", 0
                )
                out.append(result)
            if batch:
                self._task_s = 0.8 * self._task_s + 0.2 * max(durations / len(batch), 1e-6)
            self._work_ready.notify()

    def _handle_death(self, slot: _WorkerSlot, delivered: list[TaskResult]) -> None:
        """Keep every result the worker finished (sent, or still in its shared block); a task
        it started with no result (the one it died in) fails or retries; the rest requeue."""
        assert slot.process is not None and slot.result_conn is not None
        while True:
            try:
                if not slot.result_conn.poll():
                    break
                self._accept(slot, decode_records(slot.result_conn.recv_bytes()), delivered)
            except Exception:
                break  # a message cut short by the death; its records are in the block
        if slot.unsent is not None:
            self._accept(slot, slot.unsent.unsent(), delivered)
        slot.process.join(1.0)
        exitcode = slot.process.exitcode
        started_seq, still_running = last_started(slot.running.value)
        assert self._context is not None
        retries = self._context.max_retries_on_system_failure
        with self._lock:
            slot.dead = True
            requeue: list[ClaimedTask] = []
            lost = 0
            for seq, task in slot.assigned.items():
                if seq > started_seq:
                    requeue.append(task)  # never started: nothing ran
                    continue
                finished = seq < started_seq or not still_running
                reason = worker_lost_reason(
                    task["task_id"], slot.label, exitcode, finished=finished
                )
                losses = self._losses.setdefault(task["task_id"], [])
                losses.append(reason)
                if len(losses) < attempts_allowed(task, retries):
                    requeue.append(task)
                else:
                    delivered.append(self._lost_result(task, self._losses.pop(task["task_id"])))
                    self._outstanding -= 1
                    lost += 1
            slot.assigned.clear()
            self._pending.extendleft(reversed(requeue))
            log.warning(
                "%s exited (code %s); %d started task(s) failed, %d requeued; starting a "
                "replacement",
                slot.label,
                exitcode,
                lost,
                len(requeue),
            )
        with slot.send_lock:
            if slot.task_conn is not None:
                slot.task_conn.close()
                slot.task_conn = None
        slot.result_conn.close()
        if slot.lifeline is not None:
            slot.lifeline.close()
            slot.lifeline = None
        if self._stop.is_set():
            return
        replacement = self._start_worker(slot.index, slot.generation + 1)
        with self._lock:
            self._slots[slot.index] = replacement
            self._work_ready.notify()

    def _lost_result(self, task: ClaimedTask, losses: list[str]) -> TaskResult:
        assert self._context is not None
        details = {"endpoint_id": self._context.endpoint_id}
        return failed_result(task["task_id"], lost_task_text(losses), details)
