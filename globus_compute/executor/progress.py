"""Counts of an Executor's tasks by stage, kept by every thread that moves a task along.

``submit`` counts a task in and queued, the submitter counts it taken from the queue and then
sent (or failed, or cancelled), and the poller counts it done or failed. Every count sits behind
one small lock of its own, so ``Executor.progress()`` reads a consistent snapshot without
holding up any of those threads.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

__all__ = ["Progress", "TaskCounts"]


class Progress(NamedTuple):
    """A snapshot of an Executor's task counts (``Executor.progress()``)."""

    submitted: int  # accepted by submit() or reload_tasks()
    queued: int  # waiting for the submitter thread
    running: int  # handed to the service, result not yet received
    done: int  # succeeded
    failed: int  # raised, or could not be submitted or fetched
    cancelled: int


class TaskCounts:
    """Thread-safe counters behind ``Progress``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submitted = self.queued = self.sent = 0
        self.done = self.failed = self.cancelled = 0

    def add_queued(self, n: int) -> None:
        """``n`` tasks were submitted and wait in the submit queue."""
        with self._lock:
            self.submitted += n
            self.queued += n

    def add_submitted(self, n: int) -> None:
        """``n`` tasks were taken on without queueing (``reload_tasks``)."""
        with self._lock:
            self.submitted += n

    def take_from_queue(self, n: int) -> None:
        """``n`` queued tasks left the queue (to be sent, cancelled or failed)."""
        with self._lock:
            self.queued -= n

    def add_sent(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def add_failed(self, n: int) -> None:
        with self._lock:
            self.failed += n

    def add_cancelled(self, n: int) -> None:
        with self._lock:
            self.cancelled += n

    def add_resolved(self, succeeded: int, failed: int) -> None:
        with self._lock:
            self.done += succeeded
            self.failed += failed

    def snapshot(self) -> Progress:
        """The counts now."""
        with self._lock:
            resolved = self.done + self.failed + self.cancelled
            running = max(0, self.submitted - self.queued - resolved)
            return Progress(
                self.submitted, self.queued, running, self.done, self.failed, self.cancelled
            )
