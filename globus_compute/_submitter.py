"""The Executor's submitter thread: queued tasks -> batched ``POST /v3/endpoints/{ep}/submit``.

``Executor.submit`` has already registered the function and serialized the arguments in the
caller's thread, so everything queued here is a ready-to-send payload string; nothing in this
thread can fail because of one bad argument. The thread groups queued tasks by *submit group*
(endpoint, task group, resource specification, user endpoint config, result serializers: the
fields one submit request shares) and sends a group when:

* it holds ``batch_size`` tasks, or the next task would push it past the request-size budget;
* its oldest task arrived while the thread was idle: it goes out at once, so an idle executor
  (including one used submit -> result -> submit) adds no latency; or
* its oldest task arrived while a request (or a rate-limit pause) was in flight, and
  ``batch_interval`` has passed since: under load, tasks accumulate during the previous
  request and then briefly wait for company, which is where large batches come from.

A send that fails (after the Client's own transient retries) fails only the futures of that
batch, with the real exception; the thread carries on. The exception is a service that cannot be
reached at all (connection refused or reset, connect timeout): globus-sdk gives up after 8-23 s,
shorter than a service restart can take, so such a batch is resent with backoff for up to
``connection_retry_s`` more. Like globus-sdk's own retry, a resend after a reset that hit a batch
the service had already accepted submits it twice; the first copy's tasks then run unobserved.

Hand-off to the service is the point of no return for ``Future.cancel()``:
``set_running_or_notify_cancel`` is called just before the batch is built, and cancelled futures
are left out.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import InvalidStateError
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import globus_sdk

from globus_compute._rate_limit import BurstLimiter
from globus_compute.future import ComputeFuture

log = logging.getLogger(__name__)

#: The hosted service rejects submit requests over 10 MB (413 TASK_PAYLOAD_TOO_LARGE). Payload
#: characters are counted; the margin covers JSON escaping of the payloads' newlines (base64
#: lines are 76 characters) and the request's other fields.
MAX_REQUEST_CHARS = 9_500_000

#: How long a batch is resent while the service is unreachable, seconds (see the module doc).
CONNECTION_RETRY_S = 120.0
#: Errors meaning "no HTTP answer at all". Read timeouts are left out: the service was reached.
UNREACHABLE = (globus_sdk.GlobusConnectionError, globus_sdk.GlobusConnectionTimeoutError)


class SubmitGroupKey(NamedTuple):
    """The fields one submit request shares; tasks with equal keys can be batched together."""

    endpoint_id: str
    task_group_id: str | None
    resource_specification: str | None  # canonical JSON (sorted keys), or None
    user_endpoint_config: str | None  # canonical JSON (sorted keys), or None
    result_serializers: tuple[str, ...] | None  # reference import paths


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


class SubmitterHost(Protocol):
    """What the submitter needs from its Executor (kept narrow so tests can stand in)."""

    def current_task_group_id(self) -> str | None: ...

    def learn_task_group_id(self, task_group_id: str) -> None: ...

    def hand_off(self, pairs: list[tuple[str, ComputeFuture]]) -> None: ...

    def count_failed(self, n: int) -> None: ...

    def count_cancelled(self, n: int) -> None: ...

    def submitter_exited(self) -> None: ...


def canonical_json(value: dict[str, Any] | None) -> str | None:
    """Snapshot a dict as sorted-key JSON: a hashable group key and a deep copy in one."""
    return None if value is None else json.dumps(value, sort_keys=True)


def set_exception_quietly(future: ComputeFuture, exc: BaseException) -> None:
    """Fail a future unless the user already cancelled it (or something else resolved it)."""
    try:
        future.set_exception(exc)
    except InvalidStateError:
        pass


class TaskSubmitter:
    """Owns the submit queue and the named thread that drains it.

    The queue shares the Executor's lock (``lock``), so ``submit()`` checks "shut down?" and
    enqueues atomically.

    Args:
        client: The Executor's ``Client`` (``create_batch``, ``batch_run``).
        host: Callbacks into the Executor.
        lock: The Executor's lock, guarding every piece of state ``submit()`` touches.
        batch_size: Most tasks per submit request.
        batch_interval: Longest a task waits for company once the thread is busy, seconds.
        limiter: The burst limiter, or None when rate limiting is off.
        max_request_chars: Payload characters allowed in one request.
        connection_retry_s: How long a batch is resent while the service is unreachable.
    """

    def __init__(
        self,
        client: Any,
        host: SubmitterHost,
        lock: threading.Lock,
        *,
        batch_size: int,
        batch_interval: float,
        limiter: BurstLimiter | None,
        max_request_chars: int = MAX_REQUEST_CHARS,
        connection_retry_s: float = CONNECTION_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._host = host
        self._cv = threading.Condition(lock)
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self._limiter = limiter
        self.max_request_chars = max_request_chars
        self.connection_retry_s = connection_retry_s
        self._clock = clock
        self._queue: collections.deque[TaskItem] = collections.deque()
        self._queued_chars = 0
        self._closing = False
        self._busy = False  # a request (or rate-limit pause) is under way; guarded by the lock
        self._stop = threading.Event()  # set by the thread itself once everything is flushed
        self.thread = threading.Thread(target=self._run, name="GlobusComputeTaskSubmitter")

    # -- called with the Executor's lock held ------------------------------------------------

    def put_locked(self, item: TaskItem) -> None:
        """Queue a task and start the thread on first use (caller holds the lock)."""
        item.arrived_busy = self._busy
        self._queue.append(item)
        self._queued_chars += len(item.payload)
        if not self.thread.is_alive() and not self._stop.is_set():
            self.thread.start()
        depth = len(self._queue)
        if depth == 1 or depth >= self.batch_size or self._queued_chars >= self.max_request_chars:
            self._cv.notify()

    def take_all_locked(self) -> list[TaskItem]:
        """Remove and return every queued task (for ``shutdown(cancel_futures=True)``)."""
        items = list(self._queue)
        self._queue.clear()
        self._queued_chars = 0
        return items

    def close_locked(self) -> None:
        """Stop waiting for company: flush what is queued, then let the thread end."""
        self._closing = True
        self._cv.notify()

    @property
    def started(self) -> bool:
        return self.thread.ident is not None

    def queued(self) -> int:
        return len(self._queue)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._pause_for_rate_limit()
                groups = self._next_groups()
                if groups is None:
                    self._stop.set()
                    break
                for key, items in groups.items():
                    self._send(key, items)
                with self._cv:
                    self._busy = False
        except BaseException as exc:  # a defect here must not strand queued futures
            log.exception("Task submitter thread failed")
            with self._cv:
                self._closing = True
                stranded = self.take_all_locked()
            err = RuntimeError(f"The Executor's task submitter thread failed: {exc!r}")
            for item in stranded:
                set_exception_quietly(item.future, err)
            self._host.count_failed(len(stranded))
            raise
        finally:
            self._stop.set()
            self._host.submitter_exited()

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

    def _next_groups(self) -> dict[SubmitGroupKey, list[TaskItem]] | None:
        """Block until a batch is due; pop it. None means: closing and nothing left to send."""
        with self._cv:
            while not self._queue:
                if self._closing:
                    return None
                self._cv.wait()
            if not self._closing and self._queue[0].arrived_busy:
                deadline = self._queue[0].queued_at + self.batch_interval
                while not self._closing and not self._queue_is_full():
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        break
                    self._cv.wait(remaining)
            self._busy = True
            return self._drain_locked()

    def _queue_is_full(self) -> bool:
        return len(self._queue) >= self.batch_size or self._queued_chars >= self.max_request_chars

    def _drain_locked(self) -> dict[SubmitGroupKey, list[TaskItem]]:
        groups: dict[SubmitGroupKey, list[TaskItem]] = {}
        chars: dict[SubmitGroupKey, int] = {}
        while self._queue:
            item = self._queue[0]
            group = groups.setdefault(item.key, [])
            size = len(item.payload)
            used = chars.get(item.key, 0)
            if len(group) >= self.batch_size or (group and used + size > self.max_request_chars):
                break  # this group is full; the rest waits for the next round
            self._queue.popleft()
            self._queued_chars -= size
            group.append(item)
            chars[item.key] = used + size
        return {key: items for key, items in groups.items() if items}

    def _send(self, key: SubmitGroupKey, items: list[TaskItem]) -> None:
        live = [item for item in items if item.future.set_running_or_notify_cancel()]
        if len(live) < len(items):
            self._host.count_cancelled(len(items) - len(live))
        if not live:
            return
        task_group_id = key.task_group_id or self._host.current_task_group_id()
        try:
            batch = self._client.create_batch(
                task_group_id=task_group_id,
                resource_specification=_loads(key.resource_specification),
                user_endpoint_config=_loads(key.user_endpoint_config),
                create_websocket_queue=False,
                result_serializers=list(key.result_serializers or ()) or None,
            )
            for item in live:
                batch.add_payload(item.function_id, item.payload)
            response = self._run_batch(key.endpoint_id, batch, len(live))
        except Exception as exc:
            log.warning("Submitting %d task(s) to %s failed: %r", len(live), key.endpoint_id, exc)
            for item in live:
                set_exception_quietly(item.future, exc)
            self._host.count_failed(len(live))
            return
        finally:
            if self._limiter is not None:
                self._limiter.record(len(items))
        self._accept(key, live, response)

    def _run_batch(self, endpoint_id: str, batch: Any, n: int) -> Any:
        """``batch_run``, resent with backoff while the service is unreachable (a restart)."""
        deadline = self._clock() + self.connection_retry_s
        delay = 1.0
        while True:
            try:
                return self._client.batch_run(endpoint_id, batch)
            except UNREACHABLE as exc:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise
                delay = min(delay, remaining)
                log.warning(
                    "Compute service unreachable (%r); resending %d task(s) in %.1fs", exc, n, delay
                )
                self._stop.wait(delay)  # never set while the thread runs: a named, timed pause
                delay = min(delay * 2, 10.0)

    def _accept(self, key: SubmitGroupKey, items: list[TaskItem], response: dict) -> None:
        """Give each future its task id (in order per function) and hand them to the poller."""
        returned_tg = response.get("task_group_id") if isinstance(response, dict) else None
        if returned_tg and key.task_group_id is None:
            self._host.learn_task_group_id(str(returned_tg))
        tasks = response.get("tasks") if isinstance(response, dict) else None
        by_function: dict[str, list[TaskItem]] = {}
        for item in items:
            by_function.setdefault(item.function_id, []).append(item)
        pairs: list[tuple[str, ComputeFuture]] = []
        failed = 0
        for function_id, group in by_function.items():
            task_ids = (tasks or {}).get(function_id)
            if not isinstance(task_ids, list) or len(task_ids) != len(group):
                got = len(task_ids) if isinstance(task_ids, list) else 0
                err = RuntimeError(
                    f"The Compute service accepted {got} of {len(group)} task(s) for function "
                    f"{function_id} (request {response.get('request_id')!r}); the rest were not "
                    "started. Resubmit them."
                )
                for item in group:
                    set_exception_quietly(item.future, err)
                failed += len(group)
                continue
            for item, task_id in zip(group, task_ids, strict=True):
                item.future.task_id = str(task_id)
                pairs.append((item.future.task_id, item.future))
        if failed:
            self._host.count_failed(failed)
        if pairs:
            self._host.hand_off(pairs)


def _loads(canonical: str | None) -> dict[str, Any] | None:
    return None if canonical is None else json.loads(canonical)
