"""The Executor's result watcher: the one current poller, replaced when it dies.

Every task the service has accepted is handed here (by the submitter, and by ``reload_tasks``)
and given to the current :class:`~globus_compute.executor.poller.ResultPoller`. A poller ends
for good when it gives up (bad credentials, too many failed requests) or, once closed, when it
has nothing left to watch; the next hand-off then starts a fresh one, so one bad stretch fails
only the futures that poller owned. The watcher remembers only the current poller, plus those
whose threads are still finishing (so ``join`` can wait for them); a dead poller is dropped.

Life cycle, driven by the Executor: ``close_when_idle`` at ``shutdown`` (the current poller and
any later one end once their futures are resolved), ``stop`` at interpreter exit (pollers end
now; their futures, and any handed over later, fail with ``ResultPollingError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from globus_compute.errors import ResultPollingError
from globus_compute.executor.future import ComputeFuture, fail_quietly
from globus_compute.executor.poller import PollSettings, ResultPoller
from globus_compute.executor.progress import TaskCounts

if TYPE_CHECKING:
    from globus_compute.executor.client_protocol import ExecutorClient

__all__ = ["ResultWatcher"]


class ResultWatcher:
    """Owns the current result poller of one Executor.

    Args:
        client: The Executor's client, handed to each poller.
        settings: Each poller's settings.
        counts: The Executor's task counts: accepted tasks are counted sent, resolved ones
            done or failed.
        clock: Monotonic clock for the pollers (injectable for tests).
    """

    def __init__(
        self,
        client: ExecutorClient[Any],
        settings: PollSettings,
        counts: TaskCounts,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.settings = settings
        self._counts = counts
        self._clock = clock
        self._lock = threading.Lock()
        self._poller: ResultPoller | None = None
        self._retired: list[ResultPoller] = []  # replaced pollers whose threads still run
        self._closing = False
        self._stop_reason: str | None = None

    def watch(self, pairs: Sequence[tuple[str, ComputeFuture]]) -> None:
        """Resolve these accepted tasks' futures: give them to the live poller, or a new one."""
        self._counts.add_sent(len(pairs))
        while True:
            with self._lock:
                reason = self._stop_reason
                if reason is not None:
                    break
                poller = self._poller
                if poller is None or not poller.accepting:
                    poller = self._replace_poller_locked()
            if poller.watch(pairs):
                return
        err = ResultPollingError(f"{reason}; results are no longer polled")
        for _, future in pairs:
            fail_quietly(future, err)
        self._counts.add_resolved(0, len(pairs))

    def future_for(self, task_id: str) -> ComputeFuture | None:
        """The future the current poller already watches for ``task_id``, if any."""
        with self._lock:
            poller = self._poller
        return None if poller is None else poller.future_for(task_id)

    def close_when_idle(self) -> None:
        """Let the current poller, and any started later, end once their futures resolve."""
        with self._lock:
            self._closing = True
            poller = self._poller
        if poller is not None:
            poller.close_when_idle()

    def stop(self, reason: str) -> None:
        """End polling now: pending futures, and any handed over later, fail with ``reason``."""
        with self._lock:
            self._stop_reason = reason
            pollers = [*self._retired, *([self._poller] if self._poller else [])]
        for poller in pollers:
            poller.stop(reason)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads of the current poller and of those replaced before it."""
        with self._lock:
            pollers = [*self._retired, *([self._poller] if self._poller else [])]
        for poller in pollers:
            poller.join(timeout)

    def _replace_poller_locked(self) -> ResultPoller:
        old = self._poller
        self._retired = [p for p in self._retired if p.alive]
        if old is not None and old.alive:
            self._retired.append(old)
        poller = ResultPoller(
            self._client, self.settings, on_resolved=self._counts.add_resolved, clock=self._clock
        )
        if self._closing:
            poller.close_when_idle()
        self._poller = poller
        return poller
