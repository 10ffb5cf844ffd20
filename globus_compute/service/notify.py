"""In-memory wake-ups for long polls (agent claims, ``batch_status?wait=``).

Waiting requests park an asyncio future under one or more keys (``("endpoint", id)`` for an
agent's claim, ``("task", id)`` for a result); a submit, result or lease release resolves the
futures under the keys it touched. The service functions (``actions/``) notify for exactly what
each of them changed, so no route has to remember to. The database is the truth: a woken request
re-reads it, so a spurious or missed wake-up costs at most one query or one timeout, never
correctness. Everything runs on the event loop thread, so a request that checked the database
and then parks cannot miss a notification issued in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable

from globus_compute.service.records import LeaseRelease

log = logging.getLogger(__name__)


class Notifier:
    """Wakes coroutines parked under keys."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[None]]] = {}
        self.closed = False

    async def wait(self, keys: Iterable[Hashable], timeout: float) -> bool:
        """Park until any of ``keys`` is notified, the timeout passes, or the notifier closes.

        Returns:
            True if woken by a notification (or close), False on timeout.
        """
        if self.closed or timeout <= 0:
            return self.closed
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(keys)
        for key in keys:
            self._waiters.setdefault(key, set()).add(fut)
        try:
            done, _ = await asyncio.wait([fut], timeout=timeout)
            return bool(done)
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiters[key]

    def notify(self, keys: Iterable[Hashable]) -> None:
        """Wake everything parked under any of ``keys``."""
        if not self._waiters:
            return
        for key in keys:
            waiters = self._waiters.pop(key, None)
            if waiters:
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(None)

    def notify_endpoints(self, endpoint_ids: Iterable[str]) -> None:
        """Wake the claims parked on these endpoints (they have tasks to claim)."""
        self.notify(("endpoint", e) for e in endpoint_ids)

    def notify_tasks(self, task_ids: Iterable[str]) -> None:
        """Wake the status requests parked on these tasks (they may be terminal now)."""
        self.notify(("task", t) for t in task_ids)

    def notify_release(self, release: LeaseRelease) -> None:
        """Wake both sides of a lease release: waiters on failed tasks, claims of re-queuers."""
        self.notify_tasks(release.failed)
        self.notify_endpoints(release.requeued)

    def close(self) -> None:
        """Release every waiter (service shutdown) and refuse further waits."""
        self.closed = True
        self.notify(list(self._waiters))
