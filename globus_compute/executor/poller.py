"""The Executor's result poller: ``POST /v2/batch_status`` for many pending tasks per request.

One named thread owns a table ``task_id -> future`` of tasks the service has accepted. Each
round it asks ``client.get_task_outcomes`` about a chunk of them, oldest first; ids still
pending move to the back of the table, so every id is checked in turn however many there are.
Resolved futures leave the table at once (no reference to a finished future or its result is
kept). The Executor's ``ResultWatcher`` (``watcher``) decides which poller is current.

Pacing depends on where the service is:

* loopback (the embedded service): the request carries ``wait=long_poll_s`` and the service
  holds it until one of the chunk's tasks finishes, so a result is seen within milliseconds
  with no sleeping in between. Tasks handed over *during* a held request are only seen when it
  returns, which is why ``long_poll_s`` stays short (1 s). With more pending ids than one
  chunk, each chunk is held only briefly so the rotation keeps moving.
* remote (the hosted service, 20 requests / 10 s shared with submits): poll every
  ``min_interval_s``, stretch the interval by half each round that completes nothing, up to
  ``max_interval_s``, and reset it on any completion or new task.

A failed request is retried after a ``retry.Backoff`` pause (from ``min_interval_s``, doubling,
up to ``max_interval_s``). 401/403, or ``max_failures`` failures in a row, end the poller: every
future it owns gets ``ResultPollingError`` saying why, and the watcher hands later tasks to a
fresh poller. An id the service keeps omitting (expired, or never known) fails the same way
after ``missing_limit`` polls and ``missing_grace_s`` seconds. All of these knobs are one
frozen :class:`PollSettings`.

That is giving up. Dying is different: an exception escaping the loop is a defect, so the
poller tells its watcher (``on_broken``, which breaks the Executor) and fails every future it
owns with ``ExecutorBroken``. A result that cannot be deserialized is neither: the Client turns
it into that one task's ``DeserializationError``, even when unpickling raised ``SystemExit``.

The thread holds no reference to its Executor, only ``owner``, a weak one: once the Executor is
collected, the poller resolves what it owns and then ends, as after ``close_when_idle``. An
idle poller wakes every ``IDLE_CHECK_S`` to notice. No result stays referenced by the thread
once its future is resolved.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from globus_compute.errors import ExecutorBroken, ResultPollingError
from globus_compute.executor.future import ComputeFuture, fail_quietly, resolve
from globus_compute.retry import Backoff

if TYPE_CHECKING:
    from globus_compute.client.task_table import TaskOutcome
    from globus_compute.executor.client_protocol import ExecutorClient

log = logging.getLogger(__name__)

__all__ = ["PollSettings", "ResultPoller"]

#: HTTP statuses that no retry will fix: the credentials are bad or lack permission.
FATAL_HTTP_STATUSES = frozenset({401, 403})

#: How often an idle poller wakes to see whether its Executor is still there.
IDLE_CHECK_S = 1.0

#: Task ids per poll of a loopback service: it answers from SQLite in one query, and a larger
#: chunk means fewer requests when many tasks are in flight.
LOOPBACK_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class PollSettings:
    """How a result poller paces itself (see the module docstring); out-of-range values are
    raised to the nearest sensible one.

    Attributes:
        loopback: True for the embedded service (long-poll), False for a remote one.
        chunk_size: Most task ids per request (at least 1).
        long_poll_s: ``wait`` sent to a loopback service.
        min_interval_s: First and shortest pause between remote polls; first retry pause.
        max_interval_s: Longest pause between remote polls while nothing completes, and
            between retries (at least ``min_interval_s``).
        max_failures: Consecutive failed requests after which the poller gives up (at least 1).
        missing_limit: Polls an id may be omitted from answers before it fails...
        missing_grace_s: ...provided it has also been missing this long.
    """

    loopback: bool
    chunk_size: int = 128
    long_poll_s: float = 1.0
    min_interval_s: float = 1.0
    max_interval_s: float = 15.0
    max_failures: int = 8
    missing_limit: int = 3
    missing_grace_s: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_size", max(1, self.chunk_size))
        object.__setattr__(self, "min_interval_s", max(0.0, self.min_interval_s))
        object.__setattr__(self, "max_interval_s", max(self.min_interval_s, self.max_interval_s))
        object.__setattr__(self, "max_failures", max(1, self.max_failures))

    @classmethod
    def for_service(
        cls,
        loopback: bool,
        batch_size: int,
        *,
        long_poll_s: float,
        min_interval_s: float,
        max_interval_s: float,
    ) -> PollSettings:
        """An Executor's settings: loopback services get large chunks, remote ones
        ``batch_size`` ids per request (one poll per submitted batch)."""
        return cls(
            loopback=loopback,
            chunk_size=LOOPBACK_CHUNK_SIZE if loopback else batch_size,
            long_poll_s=long_poll_s,
            min_interval_s=min_interval_s,
            max_interval_s=max_interval_s,
        )

    @property
    def retry_backoff(self) -> Backoff:
        """The pauses between retries of a failed poll."""
        return Backoff(first_s=self.min_interval_s, max_s=self.max_interval_s)


class ResultPoller:
    """A named thread that resolves futures from the service's task outcomes.

    Args:
        client: The Executor's client (``get_task_outcomes(ids, wait=...)``).
        settings: Pacing, chunking and patience.
        on_resolved: Called with ``(succeeded, failed)`` counts after each round.
        on_broken: Called with the reason if the thread dies of a defect (before its futures
            are failed).
        owner: A weak reference to the Executor; None for a poller of no Executor.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        client: ExecutorClient[Any],
        settings: PollSettings,
        *,
        on_resolved: Callable[[int, int], None] | None = None,
        on_broken: Callable[[str], None] | None = None,
        owner: Callable[[], object | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.settings = settings
        self._backoff = settings.retry_backoff
        self._on_resolved = on_resolved
        self._on_broken = on_broken
        self._owner = owner
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[str, ComputeFuture] = collections.OrderedDict()
        self._missing: dict[str, tuple[int, float]] = {}  # id -> (times omitted, first omitted)
        self._closing = False
        self._exited = False
        self._activity = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.failure: str | None = None
        self._stop_reason = "the result poller was stopped"
        self.thread = threading.Thread(target=self._run, name="GlobusComputeResultPoller")

    # -- called from other threads ---------------------------------------------------------

    def watch(self, pairs: Iterable[tuple[str, ComputeFuture]]) -> bool:
        """Take ownership of ``(task_id, future)`` pairs; False if this poller has ended."""
        with self._lock:
            if self._exited:
                return False
            for task_id, future in pairs:
                self._pending[task_id] = future
            self._activity = True
            if self.thread.ident is None:
                self.thread.start()
        self._wake.set()
        return True

    def future_for(self, task_id: str) -> ComputeFuture | None:
        """The future already watched for ``task_id``, if any (lets reload reuse it)."""
        with self._lock:
            return self._pending.get(task_id)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def accepting(self) -> bool:
        """False once the thread has ended (or was stopped); ``watch`` would refuse."""
        return not self._exited

    def close_when_idle(self) -> None:
        """End the thread once every watched future is resolved (``shutdown``).

        A poller closed before its first ``watch`` still takes that hand-off and ends after it.
        """
        with self._lock:
            self._closing = True
        self._wake.set()

    def stop(self, reason: str) -> None:
        """End now: futures still pending fail with ``ResultPollingError(reason)`` before this
        returns, and a request in flight delivers nothing (interpreter exit, watcher shutdown)."""
        with self._lock:
            self._stop_reason = reason
            self._closing = True
            if self.thread.ident is None:
                self._exited = True
        self._stop.set()
        self._wake.set()
        self._fail_all(reason)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread, if it was started (and is not the caller: a done-callback)."""
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs (or is about to run)."""
        return self.thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        settings = self.settings
        interval = settings.min_interval_s
        failures = 0
        try:
            while not self._stop.is_set():
                ids, total = self._next_chunk()
                if not ids:
                    if self._idle_or_exit():
                        return
                    continue
                try:
                    answers = self._client.get_task_outcomes(ids, wait=self._wait_for(total))
                except Exception as exc:
                    failures += 1
                    reason = self._fatal_reason(exc, failures)
                    if reason is not None:
                        self._give_up(reason, exc)
                        return
                    delay = self._backoff.delay(failures)
                    log.warning(
                        "Polling %d task(s) failed (%r); retry in %.1fs", len(ids), exc, delay
                    )
                    self._stop.wait(delay)
                    continue
                failures = 0
                resolved = self._apply(ids, answers)
                del answers  # hold no result while waiting for the next round
                if settings.loopback:
                    continue
                interval = (
                    settings.min_interval_s
                    if resolved
                    else min(settings.max_interval_s, interval * 1.5)
                )
                interval = self._pause(interval)
        except BaseException as exc:
            log.exception("Result poller thread failed")
            self._die(f"The Executor's result poller thread failed: {exc!r}", exc)
            raise
        finally:
            with self._lock:
                self._exited = True
            self._fail_all(self._stop_reason)  # only a hand-off that raced stop() is left

    def _next_chunk(self) -> tuple[list[str], int]:
        with self._lock:
            chunk = list(itertools.islice(self._pending, self.settings.chunk_size))
            return chunk, len(self._pending)

    def _idle_or_exit(self) -> bool:
        """Nothing to poll: end if closing, else sleep until new work or a stop arrives."""
        with self._lock:
            if (self._closing or self._orphaned()) and not self._pending:
                self._exited = True
                return True
        self._wake.wait(IDLE_CHECK_S)
        self._wake.clear()
        return False

    def _orphaned(self) -> bool:
        return self._owner is not None and self._owner() is None

    def _wait_for(self, total: int) -> float:
        settings = self.settings
        if not settings.loopback:
            return 0.0
        # With several chunks, hold each only briefly so the rotation reaches every id.
        if total <= settings.chunk_size:
            return settings.long_poll_s
        return min(settings.long_poll_s, 0.1)

    def _fatal_reason(self, exc: Exception, failures: int) -> str | None:
        status = getattr(exc, "http_status", None)
        if status in FATAL_HTTP_STATUSES:
            return f"the service refused to report results (HTTP {status}): {exc}"
        if failures >= self.settings.max_failures:
            return f"{failures} consecutive result requests failed; last error: {exc!r}"
        return None

    def _pause(self, interval: float) -> float:
        """Sleep ``interval`` (remote pacing); new tasks shorten it to ``min_interval_s``.

        Returns:
            The interval in force afterwards.
        """
        start = self._clock()
        deadline = start + interval
        while not self._stop.is_set():
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._wake.wait(remaining)
            self._wake.clear()
            with self._lock:
                activity, self._activity = self._activity, False
            if activity:
                interval = self.settings.min_interval_s
                deadline = min(deadline, start + interval)
        return interval

    def _apply(self, ids: list[str], answers: Mapping[str, TaskOutcome]) -> int:
        """Resolve the futures whose tasks finished; return how many."""
        done: list[tuple[ComputeFuture, TaskOutcome]] = []
        lost: list[tuple[ComputeFuture, str]] = []
        now = self._clock()
        with self._lock:
            for task_id in ids:
                future = self._pending.get(task_id)
                if future is None:
                    continue
                answer = answers.get(task_id)
                if answer is None:
                    if self._note_missing(task_id, now):
                        del self._pending[task_id]
                        lost.append((future, task_id))
                    else:
                        self._pending.move_to_end(task_id)
                    continue
                self._missing.pop(task_id, None)
                if answer.pending and not future.done():
                    self._pending.move_to_end(task_id)
                    continue
                del self._pending[task_id]
                done.append((future, answer))
        succeeded = failed = 0
        for future, answer in done:
            ok = resolve(future, answer)
            succeeded += ok is True
            failed += ok is False
        for future, task_id in lost:
            fail_quietly(
                future, ResultPollingError(f"task {task_id} is unknown to the Compute service")
            )
        failed += len(lost)
        if self._on_resolved is not None and (succeeded or failed):
            self._on_resolved(succeeded, failed)
        return succeeded + failed

    def _note_missing(self, task_id: str, now: float) -> bool:
        count, first = self._missing.get(task_id, (0, now))
        count += 1
        settings = self.settings
        if count >= settings.missing_limit and now - first >= settings.missing_grace_s:
            del self._missing[task_id]
            return True
        self._missing[task_id] = (count, first)
        return False

    def _give_up(self, reason: str, exc: BaseException) -> None:
        log.error("Result poller giving up: %s", reason)
        with self._lock:
            self.failure = reason
            self._exited = True
        self._fail_all(reason, cause=exc)

    def _die(self, reason: str, exc: BaseException) -> None:
        with self._lock:
            self.failure = reason
            self._exited = True
        if self._on_broken is not None:
            self._on_broken(reason)  # first, so no new work reaches this Executor meanwhile
        self._fail_all(reason, cause=exc, error=ExecutorBroken)

    def _fail_all(
        self,
        reason: str,
        cause: BaseException | None = None,
        error: type[ResultPollingError | ExecutorBroken] = ResultPollingError,
    ) -> None:
        with self._lock:
            owned = list(self._pending.items())
            self._pending.clear()
            self._missing.clear()
        failed = 0
        for task_id, future in owned:
            err = error(
                f"{reason}. Task {task_id} was accepted by the service; fetch it later with "
                "Executor.reload_tasks(task_group_id) or Client.get_result(task_id)."
            )
            err.__cause__ = cause
            failed += fail_quietly(future, err)
        if failed and self._on_resolved is not None:
            self._on_resolved(0, failed)
