"""Counts of an Executor's tasks by stage, kept by every thread that moves a task along.

``submit`` counts a task in and queued, the submitter counts it taken from the queue and then
sent (or failed, or cancelled), and the poller counts it done or failed. Every count sits behind
one small lock of its own, so ``Executor.progress()`` reads a consistent snapshot without
holding up any of those threads.

Beside the counts, a snapshot says what the running tasks wait on: ``waiting_on`` maps each
offline endpoint that pending tasks were sent to, to the time (unix seconds) since which it has
been offline, as the result poller's endpoint watch last saw it (``endpoint_watch``)::

    from globus_compute.executor.endpoint_watch import describe_wait

    for endpoint_id, since in ex.progress().waiting_on.items():
        print(describe_wait(endpoint_id, since))  # waiting for endpoint ...; offline since ...
"""

from __future__ import annotations

import threading
import types
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["Progress", "TaskCounts"]


class _Counts(NamedTuple):
    submitted: int  # accepted by submit() or reload_tasks()
    queued: int  # waiting for the submitter thread
    running: int  # handed to the service, result not yet received
    done: int  # succeeded
    failed: int  # raised, or could not be submitted or fetched
    cancelled: int


#: ``waiting_on`` when nothing waits on an offline endpoint.
_NO_WAITS: Mapping[str, float] = types.MappingProxyType({})


class Progress(_Counts):
    """A snapshot of an Executor's task counts (``Executor.progress()``), and what they wait on.

    The six counts are the tuple (so ``submitted, queued, running, done, failed, cancelled =
    ex.progress()`` and comparisons with plain tuples keep working); ``waiting_on`` rides along
    as an attribute (a read-only mapping) and takes no part in equality.

    Attributes:
        waiting_on: Offline endpoints that running tasks wait on -> offline since (unix s).
    """

    waiting_on: Mapping[str, float] = _NO_WAITS  # also what _make and _replace leave

    def __new__(
        cls,
        submitted: int,
        queued: int,
        running: int,
        done: int,
        failed: int,
        cancelled: int,
        waiting_on: Mapping[str, float] | None = None,
    ) -> Progress:
        self = super().__new__(cls, submitted, queued, running, done, failed, cancelled)
        if waiting_on:
            self.waiting_on = types.MappingProxyType(dict(waiting_on))
        return self

    def __reduce__(self) -> tuple[type[Progress], tuple[object, ...]]:
        return type(self), (*self, dict(self.waiting_on))

    def __repr__(self) -> str:
        counts = super().__repr__()
        if not self.waiting_on:
            return counts
        return f"{counts[:-1]}, waiting_on={dict(self.waiting_on)!r})"


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

    def snapshot(self, waiting_on: Mapping[str, float] | None = None) -> Progress:
        """The counts now, with ``waiting_on`` as given (none if not)."""
        with self._lock:
            resolved = self.done + self.failed + self.cancelled
            running = max(0, self.submitted - self.queued - resolved)
            return Progress(
                self.submitted,
                self.queued,
                running,
                self.done,
                self.failed,
                self.cancelled,
                waiting_on,
            )
