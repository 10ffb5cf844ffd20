"""What becomes of Executors' background work when the process exits, or forks.

**Interpreter exit.** An Executor's submitter and pollers are ordinary (non-daemon) threads; left
alone, the interpreter would wait for every result before exiting. So the first time an Executor
starts background work it enrols that work here (its ``TaskSubmitter`` and its ``ResultWatcher``),
and at exit, in this order:

1. every enrolled submitter still alive is closed and given up to ``EXIT_FLUSH_TIMEOUT_S``
   (shared) to send what is queued, so no task a user submitted is silently dropped; then it is
   aborted: a wait still under way (for a turn in the request budget, a 429's ``Retry-After``,
   an unreachable service) is cut short, and what was not sent fails with ``ExecutorShutdown``.
   Just before that, ``client.stoppable_retry.EXITING`` is set: every globus-sdk call of ours
   still in its retry waits (a submit or poll to a service that is gone) ends after one more
   try instead of retrying for 8-23 s, so exit takes about one request timeout, not that;
2. every enrolled watcher still alive is stopped: polling ends, and each future still pending
   fails with ``ResultPollingError("the interpreter is exiting ...")``. The tasks keep running on
   the endpoint; ``Executor.reload_tasks(task_group_id)`` fetches them later.

The work is enrolled rather than the Executor because an Executor dropped without ``shutdown()``
is garbage collected while its threads finish what they own (see ``executor``): the exit hook
must still reach those threads. Only weak references are kept; a submitter or watcher lives as
long as its Executor or one of its threads.

After that first step nothing may start again: ``submit`` raises ``ExecutorShutdown('cannot
schedule new futures after interpreter shutdown')`` (a ``RuntimeError``, the stdlib's words),
whether it comes from an ``atexit`` hook, a thread still running, or a brand-new Executor.

The hook is ``threading._register_atexit``: it runs before the interpreter joins non-daemon
threads (the stdlib executors use it for the same reason); plain ``atexit`` would run too late.
Registering it fails once the interpreter is shutting down, which is how a first-ever ``submit``
from an ``atexit`` hook learns it came too late.

**Fork.** Threads do not survive ``os.fork()``, and the parent's HTTPS connections, if reused by
the child, would interleave two processes' requests on one socket. So an Executor belongs to the
process that made it: in a child, it raises ``ExecutorBroken`` naming fork
(``Executor._check_open``), its ``shutdown()`` touches nothing of the parent's, and the child's
exit hook (inherited through fork) stops nothing of the parent's: the fork handler here empties
the child's enrolment. Futures copied into the child stay as they were at the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from globus_compute.client import stoppable_retry
from globus_compute.errors import ExecutorShutdown

log = logging.getLogger(__name__)

__all__ = ["EXIT_FLUSH_TIMEOUT_S", "enrol", "interpreter_exiting"]

#: How long interpreter exit waits, in all, for submitters to send what is queued.
EXIT_FLUSH_TIMEOUT_S = 60.0
#: The reason exit gives the futures it fails.
EXIT_REASON = "the interpreter is exiting"
#: The stdlib executors' words for a submit at interpreter exit.
SHUTDOWN_TEXT = "cannot schedule new futures after interpreter shutdown"


class Flushes(Protocol):
    """An Executor's submitter, as the exit hook drives it."""

    def close(self, *, cancel_queued: bool = False) -> None: ...

    def abort(self, reason: str) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class Stops(Protocol):
    """An Executor's result watcher, as the exit hook drives it."""

    def stop(self, reason: str) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


_submitters: weakref.WeakSet[Flushes] = weakref.WeakSet()
_watchers: weakref.WeakSet[Stops] = weakref.WeakSet()
_lock = threading.Lock()
_registered = False
_exiting = False


def interpreter_exiting() -> bool:
    """True once the exit hook has run: nothing may be submitted any more."""
    return _exiting


def enrol(submitter: Flushes, watcher: Stops) -> None:
    """Have this background work flushed and stopped at interpreter exit.

    Raises:
        ExecutorShutdown: The interpreter is already shutting down.
    """
    global _registered
    with _lock:
        if _exiting:
            raise ExecutorShutdown(SHUTDOWN_TEXT)
        if not _registered:
            try:
                threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
            except RuntimeError as exc:  # "can't register atexit after shutdown"
                raise ExecutorShutdown(SHUTDOWN_TEXT) from exc
            os.register_at_fork(after_in_child=_forget_in_child)
            _registered = True
        _submitters.add(submitter)
        _watchers.add(watcher)


def _at_exit() -> None:
    global _exiting
    with _lock:
        _exiting = True
        submitters, watchers = list(_submitters), list(_watchers)
    for submitter in submitters:
        _quietly(submitter.close)
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT_S
    for submitter in submitters:
        _quietly(submitter.join, max(0.0, deadline - time.monotonic()))
    stoppable_retry.EXITING.set()  # no more globus-sdk retries: calls in flight end after a try
    for submitter in submitters:
        _quietly(submitter.abort, EXIT_REASON)  # whatever still waits for a turn fails now
    for watcher in watchers:
        _quietly(watcher.stop, EXIT_REASON)
    for watcher in watchers:
        _quietly(watcher.join)


def _quietly(step: Callable[..., object], *args: object) -> None:
    try:
        step(*args)
    except Exception:
        log.exception("Stopping background work at interpreter exit failed (%r)", step)


def _forget_in_child() -> None:
    """After fork, in the child: the enrolled work is the parent's (see the module doc)."""
    global _submitters, _watchers, _lock
    _submitters = weakref.WeakSet()
    _watchers = weakref.WeakSet()
    _lock = threading.Lock()  # the parent's may have been held by another thread at the fork
