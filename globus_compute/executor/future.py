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

**Where done-callbacks run.** ``concurrent.futures`` runs a future's callbacks in the thread
that resolves it. All of an Executor's futures are resolved by its one result-poller thread, so
a callback that blocks (``ex.submit(g, f.result()).result()``, a common way to chain work)
would hold up every other future of the Executor, including the one it waits for. So the
callbacks of a future that :func:`resolve` or :func:`fail_quietly` resolves run on a callback
thread instead: one job per future, which runs its callbacks in the order they were added and
logs a raising one as the stdlib does. The threads are ordinary (non-daemon) ones of one
process-wide pool, started on demand up to ``CALLBACK_THREADS``; while all of them are busy,
further jobs wait their turn, as callbacks do in a ``ThreadPoolExecutor`` with that many
workers. Everything else keeps the stdlib's semantics: a future without callbacks (the common
case) is resolved inline with no hand-off, ``add_done_callback`` on a done future calls at once
in the caller's thread, and ``cancel()`` runs callbacks in the cancelling thread.

``Executor.shutdown(wait=True)`` returns only after every callback job handed off so far has
run (:func:`wait_for_callbacks`; from inside a callback, all but its own), and interpreter exit
runs every job left: the pool's threads are joined by ``concurrent.futures``' own exit hook,
which runs after ``process_hooks``' (it was registered first), and a job that arrives after it
runs inline. A child made by ``os.fork()`` starts with a fresh, empty pool.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import wait as wait_for_futures

# Imported here, before any Executor enrols its work in process_hooks, so that concurrent.futures'
# exit hook (which joins the callback threads) is registered first and so runs after ours.
from concurrent.futures.thread import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from globus_compute.client.task_table import TaskOutcome

log = logging.getLogger(__name__)

__all__ = ["CALLBACK_THREADS", "ComputeFuture", "fail_quietly", "resolve", "wait_for_callbacks"]

#: Most threads running done-callbacks at once, process-wide (see the module docstring).
CALLBACK_THREADS = 16
#: Their name prefix. Not ``GlobusCompute...`` like an Executor's own threads: these are shared
#: by every Executor and outlive them.
CALLBACK_THREAD_NAME = "ComputeFutureCallback"

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

    Its done-callbacks run on a callback thread, not on the Executor's result poller, so a
    callback may block (even wait for another task of the same Executor) without holding up
    other futures; ``add_done_callback`` on a future already done still calls at once in the
    calling thread. See the module docstring.

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

    def _invoke_callbacks(self) -> None:
        # The stdlib calls this once the future is done, outside its lock, from set_result,
        # set_exception and cancel. No callbacks: nothing to hand off (the hot path).
        if not self._done_callbacks:  # type: ignore[attr-defined]
            return
        if _resolver.active:
            _callbacks.dispatch(self)
        else:
            super()._invoke_callbacks()  # type: ignore[misc]


class _Resolver(threading.local):
    """Whether this thread is inside :func:`resolve`/:func:`fail_quietly` right now."""

    active = False


_resolver = _Resolver()


class _CallbackPool:
    """The process-wide threads that run resolved futures' callbacks, and their pending jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # Each job not yet run, with its future; and per callback thread, the future it runs.
        self._jobs: dict[Future[None], ComputeFuture] = {}
        self._current = threading.local()

    def dispatch(self, future: ComputeFuture) -> None:
        """Run ``future``'s callbacks on a callback thread (inline if none can be started)."""
        try:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        CALLBACK_THREADS, thread_name_prefix=CALLBACK_THREAD_NAME
                    )
                job = self._pool.submit(self._run, future)
                self._jobs[job] = future
        except RuntimeError:  # the interpreter is exiting: concurrent.futures took no more jobs
            _run_callbacks(future)
            return
        job.add_done_callback(self._forget)

    def _run(self, future: ComputeFuture) -> None:
        self._current.future = future
        try:
            _run_callbacks(future)
        finally:
            self._current.future = None

    def _forget(self, job: Future[None]) -> None:
        with self._lock:
            self._jobs.pop(job, None)

    def wait(self) -> None:
        """Block until every job dispatched so far has run, except the caller's own."""
        own = getattr(self._current, "future", None)
        with self._lock:
            pending = [job for job, future in self._jobs.items() if future is not own]
        if pending:
            wait_for_futures(pending)

    def forget_in_child(self) -> None:
        """After fork, in the child: the pool's threads and jobs are the parent's."""
        self._lock = threading.Lock()
        self._pool = None
        self._jobs = {}
        self._current = threading.local()


def _run_callbacks(future: ComputeFuture) -> None:
    """Run a resolved future's callbacks in order; the stdlib logs a raising one."""
    try:
        Future._invoke_callbacks(future)  # type: ignore[attr-defined]
    except BaseException as exc:  # past the stdlib's ``except Exception``
        _callback_escaped(future, exc)


_callbacks = _CallbackPool()
os.register_at_fork(after_in_child=_callbacks.forget_in_child)


def wait_for_callbacks() -> None:
    """Block until the callbacks of every future resolved so far have run.

    ``Executor.shutdown(wait=True)`` calls it; from inside a callback it does not wait for
    that callback's own job.
    """
    _callbacks.wait()


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
    _resolver.active = True
    try:
        if succeeded:
            future.set_result(outcome.result)
        else:
            future.set_exception(outcome.exception)
    except InvalidStateError:  # resolved concurrently
        return None
    except BaseException as exc:  # a done-callback's (not a ComputeFuture); it is resolved
        _callback_escaped(future, exc)
    finally:
        _resolver.active = False
    return succeeded


def fail_quietly(future: Future[Any], exc: BaseException) -> bool:
    """Fail a future unless the user already cancelled it (or something else resolved it).

    Returns:
        True if this call failed it.
    """
    _resolver.active = True
    try:
        future.set_exception(exc)
    except InvalidStateError:
        return False
    except BaseException as escaped:  # a done-callback's (not a ComputeFuture); it is failed
        _callback_escaped(future, escaped)
    finally:
        _resolver.active = False
    return True


def _callback_escaped(future: Future[Any], exc: BaseException) -> None:
    """A done-callback raised past the stdlib's ``except Exception``: log it and go on."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc  # a real Ctrl-C
    log.error("A done-callback of %r raised %r; ignored", future, exc, exc_info=exc)
