"""The Executor's result poller: ``POST /v2/batch_status`` for many pending tasks per request.

One named thread owns a table ``task_id -> future`` of tasks the service has accepted. Each
round it asks ``client.get_task_outcomes`` about a chunk of them, oldest first; ids still
pending move to the back of the table, so every id is checked in turn however many there are.
Resolved futures leave the table at once (no reference to a finished future or its result is
kept). The Executor's ``ResultWatcher`` (``watcher``) decides which poller is current.

Pacing follows two properties of the client, not its URL:

* ``client.long_poll`` (the embedded service): the request carries ``wait=long_poll_s`` and the
  service holds it until one of the chunk's tasks finishes, so a result is seen within
  milliseconds with no sleeping in between. Tasks handed over *during* a held request are only
  seen when it returns, which is why ``long_poll_s`` stays short (1 s). With more pending ids
  than one chunk, each chunk is held only briefly so the rotation keeps moving.
* otherwise (the hosted service): poll ``min_interval_s`` after new tasks arrive or results
  come back, at once after a full chunk that was mostly finished (more results are waiting);
  stretch the interval by half each round that completes nothing, up to ``max_interval_s``.
  With a ``client.request_budget`` (20 requests / 10 s shared with the submits), also wait
  for the budget's share for polls (``RequestBudget.poll_wait``): every ~5 s while full submit
  batches keep it empty (each poll then carries the results of ten submits), every ~1 s while
  partial submits keep it tight, otherwise as the bucket allows: never starved.
  Each poll takes its turn in the budget before it picks its ids (``request_turn``).

How many ids a poll carries is ``poll_chunks.ChunkSizer``'s call: as many as the service takes,
grown from what the last answers carried and kept under an answer-size bound; a refusal of a
large poll (413, 400/422) shrinks it and is not a failure.

A 429 is never a failure either: the Client waits it out itself (``Client._request``); one
raised by another client implementation is waited out here. Any other failed request is
retried after a ``retry.Backoff`` pause (from ``min_interval_s``, doubling, up to
``max_interval_s``). 401/403, or ``max_failures`` failures in a row, end the poller: every
future it owns gets ``ResultPollingError`` saying why, and the watcher hands later tasks to a
fresh poller. An id the service keeps omitting (expired, or never known) fails the same way
after ``missing_limit`` polls and ``missing_grace_s`` seconds. An id a full answer left out and
listed under ``deferred`` (``TaskOutcomes.deferred``) is not missing: it is asked about again in
its turn, however often that happens. All of these knobs are one frozen :class:`PollSettings`.

Waiting is not silent. The poller knows which endpoint each submitted task waits on (the
submitter says, ``watch(..., endpoint_id=)``; reloaded tasks have none) and, after each poll,
has its :class:`~globus_compute.executor.endpoint_watch.EndpointWatch` (``endpoint_watch``)
check those endpoints, paced by ``endpoint_check_s`` and by the request budget: an offline one
is logged once and shows in ``Executor.progress().waiting_on`` until it is back.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from globus_compute.client.request_budget import (
    RequestKind,
    cancelled_by,
    is_rate_limited,
    request_turn,
    retry_after_s,
)
from globus_compute.errors import ExecutorBroken, RequestCancelled, ResultPollingError
from globus_compute.executor.endpoint_watch import CHECK_EVERY_S, EndpointWatch
from globus_compute.executor.future import ComputeFuture, fail_quietly, resolve
from globus_compute.executor.poll_chunks import MAX_ANSWER_BYTES, ChunkSizer
from globus_compute.retry import Backoff

if TYPE_CHECKING:
    from globus_compute.client.task_table import TaskOutcome, TaskOutcomes
    from globus_compute.executor.client_protocol import ExecutorClient

log = logging.getLogger(__name__)

__all__ = ["PollSettings", "ResultPoller"]

#: HTTP statuses that no retry will fix: the credentials are bad or lack permission.
FATAL_HTTP_STATUSES = frozenset({401, 403})

#: How often an idle poller wakes to see whether its Executor is still there.
IDLE_CHECK_S = 1.0

#: Task ids per long poll of the embedded service: it answers from SQLite in one query, and a
#: larger chunk means fewer requests when many tasks are in flight.
LONG_POLL_CHUNK_SIZE = 1024
#: First and largest chunk of a poll that costs a request (``poll_chunks``): the reference
#: SDK sends every id in one request; 16,384 ids make a 640 KB request body.
FIRST_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 16_384
#: While a budget holds a poll back, the poller re-reads the budget this often.
BUDGET_RECHECK_S = 0.5


@dataclass(frozen=True)
class PollSettings:
    """How a result poller paces itself (see the module docstring); out-of-range values are
    raised to the nearest sensible one.

    Attributes:
        long_poll: True if the service holds polls (``wait=``), i.e. the embedded service.
        chunk_size: Task ids of the first poll (at least 1).
        max_chunk_size: Most task ids per poll (at least ``chunk_size``).
        max_answer_bytes: Answer size a poll's chunk is kept under (estimated).
        long_poll_s: ``wait`` sent to a service that holds polls.
        min_interval_s: First and shortest pause between polls that do not long-poll; first
            retry pause.
        max_interval_s: Longest pause between such polls while nothing completes, and between
            retries (at least ``min_interval_s``).
        max_failures: Consecutive failed requests after which the poller gives up (at least 1).
        missing_limit: Polls an id may be omitted from answers before it fails...
        missing_grace_s: ...provided it has also been missing this long.
        endpoint_check_s: Least time between two status requests for one endpoint that
            pending tasks wait on (``EndpointWatch``).
    """

    long_poll: bool
    chunk_size: int = 128
    max_chunk_size: int = 128
    max_answer_bytes: int = MAX_ANSWER_BYTES
    long_poll_s: float = 1.0
    min_interval_s: float = 1.0
    max_interval_s: float = 15.0
    max_failures: int = 8
    missing_limit: int = 3
    missing_grace_s: float = 60.0
    endpoint_check_s: float = CHECK_EVERY_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_size", max(1, self.chunk_size))
        object.__setattr__(self, "max_chunk_size", max(self.chunk_size, self.max_chunk_size))
        object.__setattr__(self, "min_interval_s", max(0.0, self.min_interval_s))
        object.__setattr__(self, "max_interval_s", max(self.min_interval_s, self.max_interval_s))
        object.__setattr__(self, "max_failures", max(1, self.max_failures))

    @classmethod
    def for_service(
        cls,
        long_poll: bool,
        *,
        long_poll_s: float,
        min_interval_s: float,
        max_interval_s: float,
    ) -> PollSettings:
        """An Executor's settings: long polls ask about a fixed 1,024 ids; polls that cost a
        request start there and grow to ``MAX_CHUNK_SIZE``."""
        first, most = (
            (LONG_POLL_CHUNK_SIZE, LONG_POLL_CHUNK_SIZE)
            if long_poll
            else (FIRST_CHUNK_SIZE, MAX_CHUNK_SIZE)
        )
        return cls(
            long_poll=long_poll,
            chunk_size=first,
            max_chunk_size=most,
            long_poll_s=long_poll_s,
            min_interval_s=min_interval_s,
            max_interval_s=max_interval_s,
        )

    @property
    def retry_backoff(self) -> Backoff:
        """The pauses between retries of a failed poll."""
        return Backoff(first_s=self.min_interval_s, max_s=self.max_interval_s)

    def chunk_sizer(self) -> ChunkSizer:
        """A fresh sizer for one poller's chunks."""
        return ChunkSizer(self.chunk_size, self.max_chunk_size, self.max_answer_bytes)


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
        self._budget = client.request_budget
        self.settings = settings
        self.chunks = settings.chunk_sizer()
        self._backoff = settings.retry_backoff
        self._on_resolved = on_resolved
        self._on_broken = on_broken
        self._owner = owner
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[str, ComputeFuture] = collections.OrderedDict()
        self._missing: dict[str, tuple[int, float]] = {}  # id -> (times omitted, first omitted)
        # Which endpoint each pending task waits on (if known), and how many wait on each.
        self._endpoint_of: dict[str, str] = {}
        self._tasks_at: collections.Counter[str] = collections.Counter()
        self.endpoint_watch = EndpointWatch(
            client, check_every_s=settings.endpoint_check_s, budget=self._budget, clock=clock
        )
        self._closing = False
        self._exited = False
        self._activity = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.failure: str | None = None
        self._stop_reason = "the result poller was stopped"
        self._last_asked = 0  # ids in the poll under way (or just failed)
        self.thread = threading.Thread(target=self._run, name="GlobusComputeResultPoller")

    # -- called from other threads ---------------------------------------------------------

    def watch(
        self, pairs: Iterable[tuple[str, ComputeFuture]], *, endpoint_id: str | None = None
    ) -> bool:
        """Take ownership of ``(task_id, future)`` pairs, all waiting on ``endpoint_id`` if
        given; False if this poller has ended."""
        with self._lock:
            if self._exited:
                return False
            for task_id, future in pairs:
                if task_id in self._pending:
                    self._drop_locked(task_id)  # watched again: counted once
                self._pending[task_id] = future
                if endpoint_id is not None:
                    self._endpoint_of[task_id] = endpoint_id
                    self._tasks_at[endpoint_id] += 1
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
            with cancelled_by(self._stop):
                while not self._stop.is_set():
                    if not self.pending_count():
                        if self._idle_or_exit():
                            return
                        if not settings.long_poll and self.pending_count() and self._turn_is_free():
                            # New tasks: give them a moment to finish. (If the turn is not
                            # free, waiting for it is that moment.)
                            interval = self._pause(settings.min_interval_s)
                        continue
                    try:
                        ids, answers, total = self._poll()
                    except RequestCancelled:
                        return  # stop() during a wait; the finally clause fails the rest
                    except Exception as exc:
                        counted = self._after_failure(exc, failures)
                        if counted is None:
                            return
                        failures = counted
                        continue
                    failures = 0
                    # Outside the try: a defect reading the answer kills the thread (broken),
                    # it is not a failed request.
                    self._size_next_poll(ids, answers, total)
                    resolved, finished_at = self._apply(ids, answers)
                    del answers  # hold no result while waiting for the next round
                    self._check_endpoints(finished_at)
                    if settings.long_poll:
                        continue
                    if resolved * 2 >= len(ids) and total > len(ids):
                        interval = 0.0  # a full chunk, mostly finished: more are waiting
                    elif resolved:
                        interval = settings.min_interval_s
                    else:
                        stretched = max(interval, settings.min_interval_s) * 1.5
                        interval = min(settings.max_interval_s, stretched)
                    interval = self._pause(interval)
        except BaseException as exc:
            log.exception("Result poller thread failed")
            self._die(f"The Executor's result poller thread failed: {exc!r}", exc)
            raise
        finally:
            with self._lock:
                self._exited = True
            self._fail_all(self._stop_reason)  # only a hand-off that raced stop() is left

    def _poll(self) -> tuple[list[str], TaskOutcomes, int]:
        """One poll: take a turn in the budget, then ask about the next chunk of ids."""
        with request_turn(self._budget, RequestKind.POLL):
            ids, total = self._next_chunk()
            self._last_asked = len(ids)
            answers = self._client.get_task_outcomes(ids, wait=self._wait_for(total))
        return ids, answers, total

    def _size_next_poll(self, ids: list[str], answers: TaskOutcomes, total: int) -> None:
        """Tell the chunk sizer what this poll asked and what its answer carried."""
        finished = sum(1 for outcome in answers.values() if not outcome.pending)
        more = total > len(ids)
        self.chunks.answered(len(ids), len(answers), finished, answers.answer_bytes, more)

    def _after_failure(self, exc: Exception, failures: int) -> int | None:
        """Handle a failed poll; the consecutive failures counted now, or None to end."""
        if is_rate_limited(exc):  # a client that does not wait out 429s itself
            delay = retry_after_s(exc)
            log.info("Result poll rate limited (HTTP 429); retry in %.1fs", delay)
            if self._budget is not None:
                self._budget.drain(delay)  # the next turn comes after the delay
            else:
                self._stop.wait(delay)
            return failures
        if self.chunks.refused(self._last_asked, getattr(exc, "http_status", None)):
            return failures
        failures += 1
        reason = self._fatal_reason(exc, failures)
        if reason is not None:
            self._give_up(reason, exc)
            return None
        delay = self._backoff.delay(failures)
        log.warning("Polling %d task(s) failed (%r); retry in %.1fs", self._last_asked, exc, delay)
        self._stop.wait(delay)
        return failures

    def _turn_is_free(self) -> bool:
        """Whether a poll now would be sent at once (no budget, or a token and no queue)."""
        budget = self._budget
        return budget is None or (budget.waiting == 0 and budget.level() >= 1.0)

    def _next_chunk(self) -> tuple[list[str], int]:
        size = self.chunks.size()
        with self._lock:
            chunk = list(itertools.islice(self._pending, size))
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
        if not settings.long_poll:
            return 0.0
        # With several chunks, hold each only briefly so the rotation reaches every id.
        if total <= self.chunks.size():
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
        """Sleep ``interval``, and until the budget has room for a poll; new tasks shorten the
        interval to ``min_interval_s``.

        Returns:
            The interval in force afterwards.
        """
        start = self._clock()
        while not self._stop.is_set():
            remaining = start + interval - self._clock()
            if self._budget is not None:
                remaining = max(remaining, self._budget.poll_wait())
                if remaining > 0:
                    remaining = min(remaining, BUDGET_RECHECK_S)  # the budget's state moves
            if remaining <= 0:
                break
            self._wake.wait(remaining)
            self._wake.clear()
            with self._lock:
                activity, self._activity = self._activity, False
            if activity:
                interval = min(interval, self.settings.min_interval_s)
        return interval

    def _apply(self, ids: list[str], answers: TaskOutcomes) -> tuple[int, set[str]]:
        """Resolve the futures whose tasks finished.

        Returns:
            How many were resolved, and the endpoints whose tasks finished.
        """
        done: list[tuple[ComputeFuture, TaskOutcome]] = []
        lost: list[tuple[ComputeFuture, str]] = []
        finished_at: set[str] = set()
        now = self._clock()
        try:
            deferred = answers.deferred
            with self._lock:
                for task_id in ids:
                    future = self._pending.get(task_id)
                    if future is None:
                        continue
                    answer = answers.get(task_id)
                    if answer is None:
                        if task_id in deferred:
                            self._missing.pop(task_id, None)  # a full answer left it for later
                            self._pending.move_to_end(task_id)
                        elif self._note_missing(task_id, now):
                            self._drop_locked(task_id)
                            lost.append((future, task_id))
                        else:
                            self._pending.move_to_end(task_id)
                        continue
                    self._missing.pop(task_id, None)
                    if answer.pending and not future.done():
                        self._pending.move_to_end(task_id)
                        continue
                    endpoint_id = self._drop_locked(task_id)
                    if endpoint_id is not None and not answer.pending:
                        finished_at.add(endpoint_id)
                    done.append((future, answer))
        finally:
            # Even if reading the answer failed half-way (a defect, which kills the thread):
            # a future taken out of the table is no longer failed with the rest.
            resolved = self._deliver(done, lost)
        return resolved, finished_at

    def _deliver(
        self, done: list[tuple[ComputeFuture, TaskOutcome]], lost: list[tuple[ComputeFuture, str]]
    ) -> int:
        """Resolve finished tasks' futures and fail lost ones; count them; return how many."""
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

    def _drop_locked(self, task_id: str) -> str | None:
        """Remove a task from the table; the endpoint it waited on, if known."""
        del self._pending[task_id]
        endpoint_id = self._endpoint_of.pop(task_id, None)
        if endpoint_id is not None:
            self._tasks_at[endpoint_id] -= 1
            if self._tasks_at[endpoint_id] <= 0:
                del self._tasks_at[endpoint_id]
        return endpoint_id

    def _check_endpoints(self, finished_at: set[str]) -> None:
        """Let the endpoint watch look at the endpoints pending tasks wait on."""
        with self._lock:
            waiting = list(self._tasks_at)
        if waiting or finished_at:
            self.endpoint_watch.check(waiting, finished_at)

    def waiting_on(self) -> dict[str, float]:
        """Offline endpoints this poller's pending tasks wait on -> offline since (unix s)."""
        with self._lock:
            waiting = set(self._tasks_at)
        return {e: since for e, since in self.endpoint_watch.waiting_on().items() if e in waiting}

    def _note_missing(self, task_id: str, now: float) -> bool:
        count, first = self._missing.get(task_id, (0, now))
        count += 1
        settings = self.settings
        if count >= settings.missing_limit and now - first >= settings.missing_grace_s:
            self._missing.pop(task_id, None)  # absent if this is its first miss
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
            self._endpoint_of.clear()
            self._tasks_at.clear()
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
