"""In-memory wake-ups for long polls (agent claims, ``batch_status?wait=``).

Waiting requests listen under one or more keys (``("endpoint", id)`` for an agent's claim,
``("task", id)`` for a result); a submit, result or lease release wakes the listeners of the
keys it touched. The service functions (``actions/``) notify for exactly what each of them
changed, so no route has to remember to. The database is the truth: a woken request re-reads
it, so a spurious or missed wake-up costs at most one query or one timeout, never correctness.

Service functions run on the database thread, the listeners on the event loop, so a wake-up
issued on the database thread is handed to the loop. A long poll listens *before* it reads the
database and keeps listening between reads; so a change committed after its read always wakes
it, whichever thread notices first::

    with notifier.listen(keys) as listener:   # on the loop
        state = await read()                 # on the database thread
        while not done(state):
            await listener.wait(remaining)   # a notify since listen() returns at once
            state = await read()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Iterable

from globus_compute.service.records import LeaseRelease

log = logging.getLogger(__name__)


class Listener:
    """Wake-ups for the keys of one waiting request; a context manager that stops listening.

    Args:
        notifier: Where the keys are notified.
        keys: The keys to listen under.
    """

    def __init__(self, notifier: Notifier, keys: Iterable[Hashable]) -> None:
        self._notifier = notifier
        self.keys = list(keys)
        self._event = asyncio.Event()
        notifier._add(self)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Until a key is notified (since the last wait), the timeout passes, or the notifier
        closes.

        Returns:
            True if woken by a notification (or close), False on timeout.
        """
        if self._notifier.closed:
            return True
        if not self._event.is_set() and timeout > 0:
            with contextlib.suppress(asyncio.TimeoutError):  # TimeoutError from 3.11
                await asyncio.wait_for(self._event.wait(), timeout)
        woken = self._event.is_set()
        self._event.clear()
        return woken or self._notifier.closed

    def close(self) -> None:
        self._notifier._remove(self)


class Notifier:
    """Wakes the listeners of keys; ``notify`` may be called from any thread."""

    def __init__(self) -> None:
        self._listeners: dict[Hashable, set[Listener]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def listen(self, keys: Iterable[Hashable]) -> Listener:
        """Start listening under ``keys`` (on the event loop); use the result as a context."""
        self._loop = asyncio.get_running_loop()
        return Listener(self, keys)

    async def wait(self, keys: Iterable[Hashable], timeout: float) -> bool:
        """Listen under ``keys`` until one is notified, the timeout passes or the notifier closes.

        Returns:
            True if woken by a notification (or close), False on timeout.
        """
        if self.closed or timeout <= 0:
            return self.closed
        with self.listen(keys) as listener:
            return await listener.wait(timeout)

    def notify(self, keys: Iterable[Hashable]) -> None:
        """Wake every listener of any of ``keys``."""
        if not self._listeners:
            return  # nobody listens (a listener registers before it reads, so none is missed)
        keys = list(keys)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._wake(keys)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is left to wake
                loop.call_soon_threadsafe(self._wake, keys)

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
        """Release every listener (service shutdown) and refuse further waits."""
        self.closed = True
        self.notify(list(self._listeners))

    def _wake(self, keys: list[Hashable]) -> None:
        for key in keys:
            for listener in self._listeners.get(key, ()):
                listener.wake()

    def _add(self, listener: Listener) -> None:
        for key in listener.keys:
            self._listeners.setdefault(key, set()).add(listener)

    def _remove(self, listener: Listener) -> None:
        for key in listener.keys:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[key]
