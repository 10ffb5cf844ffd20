"""Stopping Executors still open at interpreter exit, before the interpreter joins their threads.

An Executor whose user never called ``shutdown()`` still has a submitter with queued tasks and
a poller waiting for results, and both are ordinary (non-daemon) threads: left alone, the
interpreter would wait for every result before exiting. So an Executor enrols here once, when
it first starts background work, and at exit each enrolled Executor still alive sends what is
queued and stops polling (``Executor._stop_for_exit``); its tasks keep running on the endpoint,
and ``reload_tasks`` fetches them later.

The hook is ``threading._register_atexit``: it runs before the interpreter joins non-daemon
threads (the stdlib executors use it for the same reason); plain ``atexit`` would run too late.
Only a weak reference to each Executor is kept.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

__all__ = ["stop_at_exit"]


class StopsAtExit(Protocol):
    """What the hook calls on each live Executor."""

    def _stop_for_exit(self) -> None: ...


_live: weakref.WeakSet[StopsAtExit] = weakref.WeakSet()
_lock = threading.Lock()
_registered = False


def stop_at_exit(executor: StopsAtExit) -> None:
    """Have ``executor`` stopped at interpreter exit unless it is garbage by then."""
    global _registered
    _live.add(executor)
    if _registered:
        return
    with _lock:
        if not _registered:
            threading._register_atexit(_stop_live_executors)  # type: ignore[attr-defined]
            _registered = True


def _stop_live_executors() -> None:
    for executor in list(_live):
        try:
            executor._stop_for_exit()
        except Exception:
            log.exception("Stopping %r at interpreter exit failed", executor)
