"""The main loop of one worker process of the process engine.

A worker reads chunks of tasks from its task pipe, runs them one after another with a
:class:`~globus_compute.endpoint.execution.TaskRunner` (whose function cache lives as long as the
worker) and writes results back in batches. There is no IPC message per task on the hot path:

- chunk in: ``list[tuple[seq, ClaimedTask]]`` (``None`` asks the worker to exit);
- batch out: the bytes of ``(seq, TaskResult)`` records (``result_buffer.py``), flushed when
  the chunk is done, or before starting the next task once more than :data:`FLUSH_INTERVAL_S`
  passed since the last flush.

What survives the worker's death. Each result is written, the moment its task returns, into a
block of shared memory (:class:`~globus_compute.endpoint.engines.result_buffer.ResultBuffer`)
that a batch send then empties, so the engine finds a dead worker's finished-but-unsent results
there. And the worker writes into a shared-memory integer the task's ``seq`` before calling it
and :func:`idle_marker` ``(seq)`` after its result is kept: a single aligned 8-byte store each.
Chunks run in ``seq`` order, so the engine knows which tasks had started: a started task with no
result anywhere (the one the worker died in) counts as run; see ``process.py``.

A worker dies with the agent: it watches a pipe only the agent writes to (end of file: the agent
is gone) and, when the forkserver forked it, asks the kernel for SIGKILL when the forkserver
exits (which it does when the agent does); see :mod:`globus_compute.lifeline`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from globus_compute.endpoint.engines.result_buffer import ResultBuffer, encode_record

if TYPE_CHECKING:
    from globus_compute.endpoint.execution import TaskRunner

#: Longest a finished result waits in a worker before it is sent, while the worker keeps going.
FLUSH_INTERVAL_S = 0.002

log = logging.getLogger(__name__)


#: The shared-memory value of a worker that has started no task yet.
NOTHING_STARTED = -1
#: The exit code of a worker that found its agent gone.
EXIT_AGENT_GONE = 75


def idle_marker(seq: int) -> int:
    """The shared-memory value meaning "finished ``seq``, running nothing"."""
    return -(seq + 2)


def last_started(marker: int) -> tuple[int, bool]:
    """Decode the shared-memory value: ``(seq of the last task started, still running?)``.

    ``seq`` is -1 when no task was started.
    """
    if marker >= 0:
        return marker, True
    return -marker - 2, False


def worker_main(
    task_conn: Connection,
    result_conn: Connection,
    running: Any,
    endpoint_id: str,
    unsent: ResultBuffer,
    lifeline: Connection | None = None,
    die_with_forkserver: bool = False,
) -> None:
    """Run chunks until told to stop or until the engine's end of the pipes closes.

    Args:
        task_conn: Receives chunks from the engine.
        result_conn: Sends result batches to the engine.
        running: A ``multiprocessing`` shared ``c_longlong`` (``RawValue("q")``) holding the
            running task's ``seq``, or an idle marker.
        endpoint_id: Reported in every result's ``details``.
        unsent: Where each result is kept from its task's end until it is sent.
        lifeline: The read end of a pipe only the agent writes to; its end of file (the agent
            died) ends this process at once, even in the middle of a task.
        die_with_forkserver: This process was forked by the multiprocessing forkserver: also
            ask for SIGKILL when it exits.
    """
    # Ctrl-C in a terminal reaches the whole process group; the agent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from globus_compute import lifeline as lifelines
    from globus_compute.endpoint.execution import TaskRunner

    if die_with_forkserver:
        lifelines.die_with_parent()
    watch = None
    if lifeline is not None:
        watch = lifelines.ParentWatch(lifeline.fileno(), lambda: os._exit(EXIT_AGENT_GONE))
        watch.start()
    try:
        _run_chunks(task_conn, result_conn, running, TaskRunner(endpoint_id), unsent)
    finally:
        if watch is not None:
            watch.stop()


def _run_chunks(
    task_conn: Connection,
    result_conn: Connection,
    running: Any,
    runner: TaskRunner,
    unsent: ResultBuffer,
) -> None:
    clock = time.monotonic
    while True:
        try:
            chunk = task_conn.recv()
        except (EOFError, OSError):
            return  # the engine is gone; nobody is left to report to
        if chunk is None:
            return
        last_flush = clock()
        for seq, task in chunk:
            running.value = seq
            record = encode_record(seq, runner.run(task))
            if not unsent.append(record):  # the block is full: empty it, then try again
                if not _flush(result_conn, unsent):
                    return
                if not unsent.append(record) and not _send(result_conn, record):
                    return  # too big for the block: sent on its own at once
            running.value = idle_marker(seq)
            now = clock()
            if now - last_flush > FLUSH_INTERVAL_S:
                if not _flush(result_conn, unsent):
                    return
                last_flush = now
        if not _flush(result_conn, unsent):
            return


def _flush(result_conn: Connection, unsent: ResultBuffer) -> bool:
    """Send the records held in the block, then empty it."""
    held = unsent.held()
    if not len(held):
        return True
    if not _send(result_conn, held):
        return False
    unsent.clear()
    return True


def _send(result_conn: Connection, records: bytes | memoryview) -> bool:
    try:
        result_conn.send_bytes(records)
    except (BrokenPipeError, EOFError, OSError):
        return False
    return True
