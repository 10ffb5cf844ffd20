"""The Executor's result watcher: the one current poller, replaced when it gives up.

Every task the service has accepted is handed here (by the submitter, and by ``reload_tasks``)
and given to the current :class:`~globus_compute.executor.poller.ResultPoller`. A poller ends
for good when it gives up (bad credentials, too many failed requests) or, once closed, when it
has nothing left to watch; the next hand-off then starts a fresh one, so one bad stretch fails
only the futures that poller owned. The watcher remembers only the current poller, plus those
whose threads are still finishing (so ``join`` can wait for them); a dead poller is dropped.

Giving up is not dying. A poller whose thread *dies* (a defect: an exception escaping its loop)
fails its futures with ``ExecutorBroken`` and breaks the watcher: from then on every hand-off
fails the same way, and ``broken`` says why, so the submitter stops sending and
``Executor.submit`` raises it (the stdlib's ``BrokenExecutor`` contract). Pollers still running
keep resolving what they own.

Life cycle, driven by the Executor: ``close_when_idle`` at ``shutdown`` (the current poller and
any later one end once their futures are resolved), ``stop`` at interpreter exit (pollers end
now; their futures, and any handed over later, fail with ``ResultPollingError``).
:meth:`ResultWatcher.shutdown` is the reference SDK's spelling of the two, which Parsl calls
through ``Executor._get_result_watcher()``.

Only weak references lead back to the Executor (``owner``): a dropped Executor is collected,
and its pollers then end once they have resolved what they own, as after ``shutdown(wait=False)``.
Each poller holds its watcher (through ``on_broken``), so the interpreter-exit hook, which
holds the watcher weakly, reaches every poller still running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from globus_compute.errors import ExecutorBroken, ResultPollingError
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
        owner: A weak reference to the Executor (called: the Executor, or None once it has
            been collected), handed to each poller; None for a watcher of no Executor.
        clock: Monotonic clock for the pollers (injectable for tests).
    """

    def __init__(
        self,
        client: ExecutorClient[Any],
        settings: PollSettings,
        counts: TaskCounts,
        *,
        owner: Callable[[], object | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.settings = settings
        self._counts = counts
        self._owner = owner
        self._clock = clock
        self._lock = threading.Lock()
        self._poller: ResultPoller | None = None
        self._retired: list[ResultPoller] = []  # replaced pollers whose threads still run
        self._closing = False
        self._stop_reason: str | None = None
        self._broken: str | None = None

    @property
    def broken(self) -> str | None:
        """Why a poller thread died, once one has; then nothing more can be watched."""
        return self._broken

    @property
    def stop_reason(self) -> str | None:
        """Why polling was stopped (``stop``), if it was; then nothing more can be watched."""
        return self._stop_reason

    def watch(
        self, pairs: Sequence[tuple[str, ComputeFuture]], *, endpoint_id: str | None = None
    ) -> None:
        """Resolve these accepted tasks' futures: give them to the live poller, or a new one.

        Args:
            pairs: ``(task_id, future)`` of tasks the service accepted.
            endpoint_id: The endpoint they all wait on, if known (the submitter knows; a
                reload does not): the poller then watches whether it is online.
        """
        self._counts.add_sent(len(pairs))
        while True:
            with self._lock:
                err = self._refusal_locked()
                if err is not None:
                    break
                poller = self._poller
                if poller is None or not poller.accepting:
                    poller = self._replace_poller_locked()
            if poller.watch(pairs, endpoint_id=endpoint_id):
                return
        failed = sum(fail_quietly(future, err) for _, future in pairs)
        self._counts.add_resolved(0, failed)

    def future_for(self, task_id: str) -> ComputeFuture | None:
        """The future the current poller already watches for ``task_id``, if any."""
        with self._lock:
            poller = self._poller
        return None if poller is None else poller.future_for(task_id)

    def waiting_on(self) -> dict[str, float]:
        """Offline endpoints that pending tasks wait on -> offline since (unix seconds), as the
        live pollers' endpoint watches last saw them."""
        with self._lock:
            pollers = self._pollers_locked()
        offline: dict[str, float] = {}
        for poller in pollers:
            for endpoint_id, since in poller.waiting_on().items():
                offline[endpoint_id] = min(since, offline.get(endpoint_id, since))
        return offline

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
            if self._stop_reason is None:
                self._stop_reason = reason
            pollers = self._pollers_locked()
        for poller in pollers:
            poller.stop(reason)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The reference SDK's result-watcher shutdown; callable at any time, idempotent.

        Args:
            wait: Block until the poller threads have ended.
            cancel_futures: Stop delivering results now: every future still waiting fails at
                once with ``ResultPollingError`` (its task keeps running on the endpoint;
                ``reload_tasks`` fetches it later), and so does every task handed over
                later. Without it, pollers end once what they own is resolved.
        """
        if cancel_futures:
            self.stop("the result watcher was shut down (cancel_futures=True)")
        else:
            self.close_when_idle()
        if wait:
            self.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads of the current poller and of those replaced before it."""
        with self._lock:
            pollers = self._pollers_locked()
        for poller in pollers:
            poller.join(timeout)

    def _pollers_locked(self) -> list[ResultPoller]:
        return [*self._retired, *([self._poller] if self._poller else [])]

    def _refusal_locked(self) -> BaseException | None:
        """The error a hand-off gets instead of a poller, if there is no poller to be had."""
        if self._broken is not None:
            return ExecutorBroken(self._broken)
        if self._stop_reason is not None:
            return ResultPollingError(f"{self._stop_reason}; results are no longer polled")
        return None

    def _poller_broke(self, reason: str) -> None:
        """A poller thread died (called from it, before it fails its futures)."""
        with self._lock:
            if self._broken is None:
                self._broken = reason

    def _replace_poller_locked(self) -> ResultPoller:
        old = self._poller
        self._retired = [p for p in self._retired if p.alive]
        if old is not None and old.alive:
            self._retired.append(old)
        poller = ResultPoller(
            self._client,
            self.settings,
            on_resolved=self._counts.add_resolved,
            on_broken=self._poller_broke,
            owner=self._owner,
            clock=self._clock,
        )
        if self._closing:
            poller.close_when_idle()
        self._poller = poller
        return poller
