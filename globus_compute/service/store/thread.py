"""The database thread: every call to the service's one SQLite connection, one after another.

One thread, so SQLite's connection affinity holds and transactions never interleave. Calls come
in two kinds: a request's (the default) and bulk work that may wait (purge slices, the later
slices of a big read). The thread always takes a waiting request's call first, so a purge of
hundreds of thousands of rows, or an answer of many big results, delays a small request by at
most the one slice that is running when it arrives::

    event loop                       service-database thread
    ----------                       -----------------------
    await thread.call(fn)  --------> requests: [fn, ...]   bulk: [slice, slice, ...]
       (keeps serving)               runs requests first, then one bulk call, and looks again
    <------ future resolved ---------
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long closing waits for the call that is running.
JOIN_TIMEOUT_S = 30.0


class DatabaseThread:
    """A named thread that runs calls one at a time, requests before bulk work.

    Started by its first call, so a store used without an event loop (the CLI, tests) starts no
    thread.
    """

    def __init__(self, name: str = "service-database") -> None:
        self.name = name
        self._ready = threading.Condition()
        self._requests: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._bulk: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def call(self, fn: Callable[[], T], *, bulk: bool = False) -> T:
        """``fn()`` on the thread; ``bulk`` calls wait while any request's call is queued.

        Raises:
            RuntimeError: The thread was closed.
        """
        future: Future[T] = Future()
        with self._ready:
            if self._stop.is_set():
                raise RuntimeError("the database thread is closed")
            (self._bulk if bulk else self._requests).append((fn, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name)
                self._thread.start()
            self._ready.notify()
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Finish what is queued, then stop the thread (idempotent)."""
        with self._ready:
            self._stop.set()
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(JOIN_TIMEOUT_S)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not (self._requests or self._bulk or self._stop.is_set()):
                    self._ready.wait()
                if not (self._requests or self._bulk):
                    return  # stopped, and nothing left to do
                fn, future = (self._requests or self._bulk).popleft()
            if not future.set_running_or_notify_cancel():
                continue  # the caller went away (a cancelled request)
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
