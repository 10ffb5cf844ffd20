"""The main loop of one worker process of the process engine.

A worker reads chunks of tasks from its task pipe, runs them one after another with a
:class:`~globus_compute.endpoint.execution.TaskRunner` (whose function cache lives as long as the
worker) and writes results back in batches. There is no IPC message per task on the hot path:

- chunk in: ``list[tuple[seq, ClaimedTask]]`` (``None`` asks the worker to exit);
- batch out: ``list[tuple[seq, TaskResult]]``, flushed when the chunk is done, or before
  starting the next task once more than :data:`FLUSH_INTERVAL_S` passed since the last flush.

So that the engine can tell which task a dead worker was running, the worker writes the task's
``seq`` into a shared-memory integer before calling it and ``-(seq + 1)`` after it returned: a
single aligned 8-byte store, which the engine reads after the process has died.
"""

from __future__ import annotations

import logging
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

#: Longest a finished result waits in a worker before it is sent, while the worker keeps going.
FLUSH_INTERVAL_S = 0.002

log = logging.getLogger(__name__)


def idle_marker(seq: int) -> int:
    """The shared-memory value meaning "finished ``seq``, running nothing"."""
    return -(seq + 1)


def worker_main(
    task_conn: Connection,
    result_conn: Connection,
    running: Any,
    endpoint_id: str,
    allowed_serializers: tuple[str, ...] = (),
) -> None:
    """Run chunks until told to stop or until the engine's end of the pipes closes.

    Args:
        task_conn: Receives chunks from the engine.
        result_conn: Sends result batches to the engine.
        running: A ``multiprocessing`` shared ``c_longlong`` (``RawValue("q")``) holding the
            running task's ``seq``, or a negative idle marker.
        endpoint_id: Reported in every result's ``details``.
        allowed_serializers: The endpoint's deserializer allow-list (see ``TaskRunner``).
    """
    # Ctrl-C in a terminal reaches the whole process group; the agent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from globus_compute.endpoint.execution import TaskRunner

    runner = TaskRunner(endpoint_id, allowed_serializers=allowed_serializers)
    clock = time.monotonic
    while True:
        try:
            chunk = task_conn.recv()
        except (EOFError, OSError):
            return  # the engine is gone; nobody is left to report to
        if chunk is None:
            return
        finished: list[tuple[int, Any]] = []
        last_flush = clock()
        for seq, task in chunk:
            running.value = seq
            result = runner.run(task)
            running.value = idle_marker(seq)
            finished.append((seq, result))
            now = clock()
            if now - last_flush > FLUSH_INTERVAL_S:
                if not _send(result_conn, finished):
                    return
                finished = []
                last_flush = now
        if finished and not _send(result_conn, finished):
            return


def _send(result_conn: Connection, batch: list[tuple[int, Any]]) -> bool:
    try:
        result_conn.send(batch)
    except (BrokenPipeError, EOFError, OSError):
        return False
    return True
