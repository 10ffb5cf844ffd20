"""The Executor's submitter thread: queued tasks -> batched ``POST /v3/endpoints/{ep}/submit``.

``Executor.submit`` has already registered the function and serialized the arguments in the
caller's thread, so everything queued here is a ready-to-send payload string; nothing in this
thread can fail because of one bad argument. The thread groups queued tasks by *submit group*
(endpoint, task group, resource specification, user endpoint config, result serializers: the
fields one submit request shares) and sends a group when:

* it holds ``batch_size`` tasks, or the next task would push its request past
  ``max_request_bytes``: bytes *on the wire*, each payload counted as JSON-escaped text, since
  a payload of quotes or backslashes doubles when escaped;
* its oldest task arrived while the thread was idle: it goes out at once, so an idle executor
  (including one used submit -> result -> submit) adds no latency; or
* its oldest task arrived while a request (or a wait for a turn) was in flight, and
  ``batch_interval`` has passed since: under load, tasks accumulate during the previous
  request and then briefly wait for company, which is where large batches come from.

With a request budget (``client.request_budget``, the hosted service's 20 requests / 10 s),
each send first waits for its turn (``request_turn``) and only then takes the tasks off the
queue, so everything that arrived during the wait goes in the same request: lone tasks go at
once while the budget has room, and at the budget's pace once it is tight, in fuller batches.
A turn taken for a full batch is marked as such, which is how the result poller knows to
leave the budget to submits and poll rarely.

Accepted tasks get their task ids and go straight to the Executor's ``ResultWatcher``. A send
that fails (after the Client's own transient retries) fails only the futures of that batch,
with the real exception; an answer that cannot be matched to the batch fails them with
``InvalidServiceResponse``; the thread carries on. Two failures are waited out instead: a 429
(the Client resends it itself; one raised by another client implementation is resent here
after ``Retry-After``), and a service that cannot be reached at all (connection refused or
reset, connect timeout): globus-sdk gives up after 8-23 s, shorter than a service restart can
take, so such a batch is resent after ``retry.Backoff`` pauses for up to ``connection_retry_s``
more. Like globus-sdk's own retry, a resend after a reset that hit a batch the service had
already accepted submits it twice; the first copy's tasks then run unobserved. ``abort`` cuts
every such wait short (interpreter exit): what was not sent fails with ``ExecutorShutdown``.

If the thread itself dies (an exception escaping its loop: a defect), the Executor is broken:
the batch it was sending and everything queued fail with ``ExecutorBroken`` saying why, and
``put`` raises it from then on. A broken result watcher (a poller thread died) has the same
effect at the next batch: nothing more is sent that nobody would watch.

The thread holds no reference to its Executor, only ``owner``, a weak one (the task-group
callbacks are the Executor's settings cell's, not the Executor's). Once the Executor is collected
the thread sends what is queued and ends, as after ``close()``; an idle thread wakes every
``IDLE_CHECK_S`` to notice. It keeps no task (nor its future, nor its result) after sending it.

Hand-off to the service is the point of no return for ``Future.cancel()``:
``set_running_or_notify_cancel`` is called just before the batch is built, and cancelled futures
are left out.

The queue has its own lock and condition: ``put`` checks "closed?" and enqueues atomically, so
a task either is queued before ``close`` (and is sent, or cancelled by
``close(cancel_queued=True)``) or is refused.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import globus_sdk

from globus_compute.client.request_budget import (
    RequestKind,
    cancelled_by,
    is_rate_limited,
    request_turn,
    retry_after_s,
)
from globus_compute.errors import (
    ExecutorBroken,
    ExecutorShutdown,
    InvalidServiceResponse,
    RequestCancelled,
)
from globus_compute.executor.burst_limiter import BurstLimiter
from globus_compute.executor.future import ComputeFuture, fail_quietly
from globus_compute.executor.progress import TaskCounts
from globus_compute.executor.settings import SubmitGroupKey
from globus_compute.executor.watcher import ResultWatcher
from globus_compute.retry import Backoff

if TYPE_CHECKING:
    from globus_compute.executor.client_protocol import ExecutorClient

log = logging.getLogger(__name__)

__all__ = ["TaskItem", "TaskSubmitter"]

#: The hosted service rejects submit requests over 10 MB (413 TASK_PAYLOAD_TOO_LARGE). The
#: payloads' JSON-escaped bytes are counted (``wire_bytes``); the margin covers the request's
#: other fields.
MAX_REQUEST_BYTES = 9_500_000

#: How long a batch is resent while the service is unreachable, seconds (see the module doc).
CONNECTION_RETRY_S = 120.0
#: The pauses between those resends.
CONNECTION_BACKOFF = Backoff(first_s=1.0, max_s=10.0)
#: How often an idle submitter thread wakes to see whether its Executor is still there.
IDLE_CHECK_S = 1.0
#: Errors meaning "no HTTP answer at all". Read timeouts are left out: the service was reached.
UNREACHABLE = (globus_sdk.GlobusConnectionError, globus_sdk.GlobusConnectionTimeoutError)


def wire_bytes(payload: str) -> int:
    """Bytes ``payload`` takes in a submit request body: JSON-escaped, as requests encodes it
    (ASCII, so ``"`` and ``\\`` double and non-ASCII becomes a six-character ``\\u``
    escape), plus its separator."""
    return len(json.dumps(payload)) + 2


@dataclass(slots=True)
class TaskItem:
    """One queued task; dropped as soon as its batch has been sent."""

    future: ComputeFuture
    function_id: str
    payload: str
    key: SubmitGroupKey
    queued_at: float
    #: Set by the submitter: True if a request was in flight when the task was queued.
    arrived_busy: bool = False
    #: Set by the submitter: the payload's ``wire_bytes``.
    size: int = 0


class TaskSubmitter:
    """Owns the submit queue and the named thread that drains it.

    Args:
        client: The Executor's client (``create_batch``, ``batch_run``).
        watcher: Takes the futures of accepted tasks.
        counts: The Executor's task counts (queued, cancelled, failed).
        current_task_group: The Executor's task group now (a group the service created for
            an earlier batch), for batches queued without one.
        learn_task_group: Called with the group the service created for such a batch.
        batch_size: Most tasks per submit request.
        batch_interval: Longest a task waits for company once the thread is busy, seconds.
        limiter: The reference's burst limiter, or None (the default: the budget paces).
        max_request_bytes: Payload bytes (``wire_bytes``) allowed in one request.
        connection_retry_s: How long a batch is resent while the service is unreachable.
        backoff: The pauses between those resends.
        owner: A weak reference to the Executor; None for a submitter of no Executor.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        client: ExecutorClient[Any],
        watcher: ResultWatcher,
        counts: TaskCounts,
        *,
        current_task_group: Callable[[], str | None],
        learn_task_group: Callable[[str], None],
        batch_size: int,
        batch_interval: float,
        limiter: BurstLimiter | None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        connection_retry_s: float = CONNECTION_RETRY_S,
        backoff: Backoff = CONNECTION_BACKOFF,
        owner: Callable[[], object | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._budget = client.request_budget
        self._watcher = watcher
        self._counts = counts
        self._current_task_group = current_task_group
        self._learn_task_group = learn_task_group
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self._limiter = limiter
        self.max_request_bytes = max_request_bytes
        self.connection_retry_s = connection_retry_s
        self._backoff = backoff
        self._owner = owner
        self._clock = clock
        self._cv = threading.Condition(threading.Lock())
        self._queue: collections.deque[TaskItem] = collections.deque()
        self._queued_bytes = 0
        self._closing = False
        self._broken: str | None = None  # why the thread died, once it has
        self._busy = False  # a request (or rate-limit pause) is under way; guarded by the lock
        self._stop = threading.Event()  # set by the thread itself once everything is flushed
        self._abort = threading.Event()  # set by abort(): cut every wait short
        self._abort_reason = "the Executor was stopped"
        self.thread = threading.Thread(target=self._run, name="GlobusComputeTaskSubmitter")

    # -- called from other threads ---------------------------------------------------------

    def put(self, item: TaskItem) -> bool:
        """Queue a task, starting the thread on first use; False once closed (nothing queued).

        Raises:
            ExecutorBroken: The thread, or a result poller, died of a defect; nothing will be
                sent any more.
        """
        item.size = wire_bytes(item.payload)  # outside the lock: a payload may be megabytes
        with self._cv:
            broken = self.broken
            if broken is not None:
                raise ExecutorBroken(broken)
            if self._closing:
                return False
            item.arrived_busy = self._busy
            self._queue.append(item)
            self._queued_bytes += item.size
            self._counts.add_queued(1)  # with the append: progress() sees both or neither
            if self.thread.ident is None:
                self.thread.start()
            depth = len(self._queue)
            if (
                depth == 1
                or depth >= self.batch_size
                or self._queued_bytes >= self.max_request_bytes
            ):
                self._cv.notify()
        return True

    def close(self, *, cancel_queued: bool = False) -> None:
        """Take no more tasks; send what is queued (or cancel it), then let the thread end."""
        with self._cv:
            self._closing = True
            taken = self._take_all_locked() if cancel_queued else []
            self._cv.notify()
        cancelled = sum(1 for item in taken if item.future.cancel())
        if cancelled:
            self._counts.add_cancelled(cancelled)

    def abort(self, reason: str) -> None:
        """Close, and cut short every wait (budget turns, 429s, an unreachable service): the
        batch being sent and every queued task fail with ``ExecutorShutdown(reason)``."""
        self._abort_reason = reason
        self._abort.set()
        self.close()

    @property
    def broken(self) -> str | None:
        """Why the Executor is broken (this thread or a result poller died), if it is."""
        return self._broken or self._watcher.broken

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread, if it was started (and is not the caller: a done-callback)."""
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        # The batch being sent stays here until it is sent, so that if the thread dies its
        # futures are failed too; emptied before the next wait (it holds futures and results).
        groups: dict[SubmitGroupKey, list[TaskItem]] = {}
        try:
            with cancelled_by(self._abort):
                while not self._stop.is_set():
                    self._pause_for_rate_limit()
                    kind = self._await_batch()
                    if kind is None:
                        self._stop.set()
                        break
                    try:
                        with request_turn(self._budget, kind):
                            groups = self._drain()
                            while groups:
                                key = next(iter(groups))
                                self._send(key, groups[key])
                                del groups[key]
                    except RequestCancelled:
                        err = ExecutorShutdown(f"{self._abort_reason}; the task was not sent")
                        self._fail([item for items in groups.values() for item in items], err)
                        groups = {}
                        self._fail_queued(err)
                        break
                    with self._cv:
                        self._busy = False
        except BaseException as exc:  # a defect here must not strand a single future
            log.exception("Task submitter thread failed")
            in_flight = [item for items in groups.values() for item in items]
            self._break(f"The Executor's task submitter thread failed: {exc!r}", in_flight, exc)
            raise
        finally:
            self._stop.set()

    def _break(
        self, reason: str, in_flight: list[TaskItem], cause: BaseException | None = None
    ) -> None:
        """The Executor is broken: refuse more, fail the batch in flight and all queued."""
        with self._cv:
            if self._broken is None:
                self._broken = reason
        err = ExecutorBroken(reason)
        err.__cause__ = cause
        self._fail(in_flight, err)
        self._fail_queued(err)

    def _fail_queued(self, err: BaseException) -> None:
        """Close, and fail every queued task with ``err``."""
        with self._cv:
            self._closing = True
            stranded = self._take_all_locked()
        self._fail(stranded, err)

    def _take_all_locked(self) -> list[TaskItem]:
        items = list(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._counts.take_from_queue(len(items))
        return items

    def _pause_for_rate_limit(self) -> None:
        if self._limiter is None:
            return
        delay = self._limiter.delay()
        if delay > 0:
            log.warning(
                "API rate-limit delay of %.2fs (more than %d partial batches in %.0fs; "
                "batch_size=%d). Consider submitting more tasks at once.",
                delay,
                self._limiter.limit,
                self._limiter.window_s,
                self.batch_size,
            )
            # Tasks keep piling up meanwhile; shutdown cuts the pause short.
            with self._cv:
                self._busy = True
                self._cv.wait_for(lambda: self._closing, timeout=delay)

    def _await_batch(self) -> RequestKind | None:
        """Block until a batch is due; None means: closing and nothing left to send.

        Returns:
            The kind of turn it needs: ``BULK`` if the queue holds a full batch.
        """
        with self._cv:
            while not self._queue:
                if self._closing or self._orphaned():
                    return None
                self._cv.wait(IDLE_CHECK_S)
            if not self._closing and self._queue[0].arrived_busy:
                deadline = self._queue[0].queued_at + self.batch_interval
                while not self._closing and not self._queue_is_full():
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        break
                    self._cv.wait(remaining)
            self._busy = True  # tasks queued from now on wait for company (and for the turn)
            return RequestKind.BULK if self._queue_is_full() else RequestKind.SUBMIT

    def _drain(self) -> dict[SubmitGroupKey, list[TaskItem]]:
        with self._cv:
            return self._drain_locked()

    def _orphaned(self) -> bool:
        return self._owner is not None and self._owner() is None

    def _queue_is_full(self) -> bool:
        return len(self._queue) >= self.batch_size or self._queued_bytes >= self.max_request_bytes

    def _drain_locked(self) -> dict[SubmitGroupKey, list[TaskItem]]:
        groups: dict[SubmitGroupKey, list[TaskItem]] = {}
        sizes: dict[SubmitGroupKey, int] = {}
        taken = 0
        while self._queue:
            item = self._queue[0]
            group = groups.setdefault(item.key, [])
            size = item.size
            used = sizes.get(item.key, 0)
            if len(group) >= self.batch_size or (group and used + size > self.max_request_bytes):
                break  # this group is full; the rest waits for the next round
            self._queue.popleft()
            self._queued_bytes -= size
            group.append(item)
            sizes[item.key] = used + size
            taken += 1
        self._counts.take_from_queue(taken)
        return {key: items for key, items in groups.items() if items}

    def _send(self, key: SubmitGroupKey, items: list[TaskItem]) -> None:
        live = [item for item in items if item.future.set_running_or_notify_cancel()]
        if len(live) < len(items):
            self._counts.add_cancelled(len(items) - len(live))
        if not live:
            return
        broken = self._watcher.broken
        if broken is not None:  # a poller died: nobody would watch these tasks
            self._break(broken, live)
            return
        by_function: dict[str, list[TaskItem]] = {}
        for item in live:
            by_function.setdefault(item.function_id, []).append(item)
        try:
            batch = self._client.create_batch(
                task_group_id=key.task_group_id or self._current_task_group(),
                resource_specification=_loads(key.resource_specification),
                user_endpoint_config=_loads(key.user_endpoint_config),
                create_websocket_queue=False,
                result_serializers=list(key.result_serializers or ()) or None,
            )
            for function_id, group in by_function.items():
                batch.add_payloads(function_id, [item.payload for item in group])
            response = self._run_batch(key.endpoint_id, batch, len(live))
        except RequestCancelled:
            self._fail(live, ExecutorShutdown(f"{self._abort_reason}; the task was not sent"))
            raise
        except Exception as exc:
            log.warning("Submitting %d task(s) to %s failed: %r", len(live), key.endpoint_id, exc)
            self._fail(live, exc)
            return
        finally:
            if self._limiter is not None:
                self._limiter.record(len(items))
        self._accept(key, by_function, response)

    def _run_batch(self, endpoint_id: str, batch: Any, n: int) -> Any:
        """``batch_run``, resent while rate limited or while the service is unreachable.

        Raises:
            RequestCancelled: ``abort`` cut a wait short.
        """
        deadline = self._clock() + self.connection_retry_s
        retry = 0
        while True:
            try:
                return self._client.batch_run(endpoint_id, batch)
            except UNREACHABLE as exc:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise
                retry += 1
                delay = min(self._backoff.delay(retry), remaining)
                log.warning(
                    "Compute service unreachable (%r); resending %d task(s) in %.1fs", exc, n, delay
                )
            except Exception as exc:
                if not is_rate_limited(exc):  # the Client waits out 429s itself; others may not
                    raise
                delay = retry_after_s(exc)
                log.info(
                    "Submit of %d task(s) rate limited (HTTP 429); resending in %.1fs", n, delay
                )
            if self._abort.wait(delay):
                raise RequestCancelled(f"{self._abort_reason}; {n} task(s) were not sent")

    def _accept(
        self, key: SubmitGroupKey, by_function: dict[str, list[TaskItem]], response: Any
    ) -> None:
        """Give each future its task id (in order per function) and hand them to the watcher."""
        if not isinstance(response, dict):
            n = sum(len(group) for group in by_function.values())
            self._fail(
                [item for group in by_function.values() for item in group],
                InvalidServiceResponse(
                    f"The Compute service answered a submit of {n} task(s) with "
                    f"{type(response).__name__}, not a JSON object; whether the tasks were "
                    "started is unknown."
                ),
            )
            return
        returned_tg = response.get("task_group_id")
        if returned_tg and key.task_group_id is None:
            self._learn_task_group(str(returned_tg))
        tasks = response.get("tasks")
        if not isinstance(tasks, dict):
            tasks = {}
        pairs: list[tuple[str, ComputeFuture]] = []
        for function_id, group in by_function.items():
            task_ids = tasks.get(function_id)
            if not isinstance(task_ids, list) or len(task_ids) != len(group):
                got = len(task_ids) if isinstance(task_ids, list) else 0
                self._fail(
                    group,
                    InvalidServiceResponse(
                        f"The Compute service accepted {got} of {len(group)} task(s) for "
                        f"function {function_id} (request {response.get('request_id')!r}); the "
                        "rest were not started. Resubmit them."
                    ),
                )
                continue
            for item, task_id in zip(group, task_ids, strict=True):
                item.future.task_id = str(task_id)
                pairs.append((item.future.task_id, item.future))
        if pairs:
            self._watcher.watch(pairs, endpoint_id=key.endpoint_id)

    def _fail(self, items: list[TaskItem], exc: BaseException) -> None:
        failed = sum(fail_quietly(item.future, exc) for item in items)
        self._counts.add_failed(failed)


def _loads(canonical: str | None) -> dict[str, Any] | None:
    return None if canonical is None else json.loads(canonical)
