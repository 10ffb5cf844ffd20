"""In-memory wake-ups for long polls (agent claims, ``batch_status?wait=``).

Waiting requests park an asyncio future under one or more keys (``("endpoint", id)`` for an
agent's claim, ``("task", id)`` for a result); a submit, result or lease release resolves the
futures under the keys it touched. The database is the truth: a woken request re-reads it, so a
spurious or missed wake-up costs at most one query or one timeout, never correctness. Everything
runs on the event loop thread, so a request that checked the database and then parks cannot miss
a notification issued in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable

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
        self.notify(("endpoint", e) for e in endpoint_ids)

    def notify_tasks(self, task_ids: Iterable[str]) -> None:
        self.notify(("task", t) for t in task_ids)

    def close(self) -> None:
        """Release every waiter (service shutdown) and refuse further waits."""
        self.closed = True
        self.notify(list(self._waiters))
