"""``ComputeFuture``: a ``concurrent.futures.Future`` that knows its Globus Compute task id.

The future adds one public attribute, ``task_id``, which is ``None`` until the service has
accepted the task (the Executor's submitter thread sets it from the submit response). Everything
else is the standard ``Future``, so ``concurrent.futures.wait`` and ``as_completed`` work on it.

Memory is the reason for the second class here. A stock ``Future`` builds a
``threading.Condition`` whose ``collections.deque`` of waiters alone takes ~600 bytes, and the
condition binds five lock methods per instance: ~1.6 KB per future before any task data. An
Executor holding 100,000 in-flight futures should stay near 1 KB each, so ``ComputeFuture`` uses
``_LeanCondition``: the same operations over a plain ``Lock``, with the waiter list created only
when a thread actually waits.

The two functions at the end are how the Executor's threads resolve futures: :func:`resolve`
from a task's outcome, :func:`fail_quietly` with an error of the Executor's own. Both leave alone
a future the user cancelled meanwhile, and both survive a done-callback that raises: the stdlib
logs a callback's ``Exception`` itself, but a ``SystemExit`` or ``KeyboardInterrupt`` raised in a
callback would escape ``set_result`` and, in a background thread, strand every other future
that thread was about to resolve. They log it instead (a real Ctrl-C on the main thread still
propagates).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from globus_compute.client.task_table import TaskOutcome

log = logging.getLogger(__name__)

__all__ = ["ComputeFuture", "fail_quietly", "resolve"]

#: ``Future.__repr__``'s words for its states (the stdlib's map is private).
_STATE_WORDS = {"CANCELLED_AND_NOTIFIED": "cancelled"}


class _LeanCondition:
    """The part of ``threading.Condition`` that ``concurrent.futures`` uses, in fewer bytes.

    ``Future`` and the module functions ``wait``/``as_completed`` only use the context manager,
    ``acquire``/``release``, ``wait(timeout)`` and ``notify_all``. The lock is not reentrant,
    unlike the stdlib's (an ``RLock``): the one place the stdlib re-enters it is
    ``Future.__repr__``, called by ``set_result``/``set_exception`` while holding the lock to
    word their ``InvalidStateError``, and ``ComputeFuture.__repr__`` takes no lock.
    """

    __slots__ = ("_lock", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One single-use lock per waiting thread; None while nobody waits (the common case).
        self._waiters: list[threading.Lock] | None = None

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, block until notified or ``timeout`` passes, then re-acquire it."""
        waiter = threading.Lock()
        waiter.acquire()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        self._lock.release()
        notified = False
        try:
            if timeout is None:
                notified = waiter.acquire()
            elif timeout > 0:
                notified = waiter.acquire(True, timeout)
            else:
                notified = waiter.acquire(False)
            return notified
        finally:
            self._lock.acquire()
            if not notified and self._waiters is not None:
                try:
                    self._waiters.remove(waiter)
                except ValueError:  # notified between the timeout and re-acquiring the lock
                    pass

    def notify(self, n: int = 1) -> None:
        if not self._waiters:
            return
        wake, self._waiters = self._waiters[:n], self._waiters[n:] or None
        for waiter in wake:
            waiter.release()

    def notify_all(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            waiter.release()


class ComputeFuture(Future[Any]):
    """The future of one Globus Compute task.

    Args:
        task_id: The service's task id, when known (``Executor.reload_tasks`` passes it;
            ``Executor.submit`` leaves it ``None`` until the service has accepted the task).

    Attributes:
        task_id: The task id as a canonical UUID string, or ``None`` before hand-off.
    """

    def __init__(self, task_id: str | None = None) -> None:
        super().__init__()
        self._condition = _LeanCondition()  # type: ignore[assignment]
        self.task_id = task_id

    def __repr__(self) -> str:
        # The stdlib's format, read without the lock (see _LeanCondition): a second set_result
        # calls repr() while holding it. Each attribute read is atomic; a repr racing a state
        # change may show either side of it, which is all a repr promises.
        state, result, exception = self._state, self._result, self._exception
        word = _STATE_WORDS.get(state, state.lower())
        text = f"<{type(self).__name__} at {id(self):#x} state={word}"
        if state == "FINISHED":
            if exception is not None:
                text += f" raised {type(exception).__name__}"
            else:
                text += f" returned {type(result).__name__}"
        if self.task_id is not None:
            text += f" task_id={self.task_id}"
        return text + ">"


def resolve(future: Future[Any], outcome: TaskOutcome) -> bool | None:
    """Set a finished task's outcome on its future.

    Args:
        future: The task's future; left alone if already done (e.g. cancelled by the user).
        outcome: A finished outcome (``Client.get_task_outcomes``).

    Returns:
        True for a result, False for an exception, None if the future was already done.
    """
    if future.done():
        return None
    succeeded = outcome.exception is None
    try:
        if succeeded:
            future.set_result(outcome.result)
        else:
            future.set_exception(outcome.exception)
    except InvalidStateError:  # resolved concurrently
        return None
    except BaseException as exc:  # a done-callback's; the future is resolved
        _callback_escaped(future, exc)
    return succeeded


def fail_quietly(future: Future[Any], exc: BaseException) -> bool:
    """Fail a future unless the user already cancelled it (or something else resolved it).

    Returns:
        True if this call failed it.
    """
    try:
        future.set_exception(exc)
    except InvalidStateError:
        return False
    except BaseException as escaped:  # a done-callback's; the future is failed
        _callback_escaped(future, escaped)
    return True


def _callback_escaped(future: Future[Any], exc: BaseException) -> None:
    """A done-callback raised past the stdlib's ``except Exception``: log it and go on."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc  # a real Ctrl-C
    log.error("A done-callback of %r raised %r; ignored", future, exc, exc_info=exc)
