"""``Executor``: a ``concurrent.futures.Executor`` that runs functions on Globus Compute endpoints.

Data flow (each box on the right is a named thread, started on first use)::

    user threads                     |  GlobusComputeTaskSubmitter    |  GlobusComputeResultPoller
    ------------                     |  (_submitter.TaskSubmitter)    |  (_poller.ResultPoller)
    submit(fn, *a, **kw)             |                                |
      register fn once (cached) -----+-> POST /v3/functions           |
      pack args NOW (bad arg raises) |                                |
      with lock: queue.append ------>| groups by submit key, sends on |
      return ComputeFuture           | size / bytes / timer / idle:   |
                                     |   POST /v3/endpoints/{ep}/submit
                                     |   future.task_id = tid         |
                                     |   hand_off([(tid, future)]) -->| table {tid: future}, oldest
                                     |   (a failed send fails only    |   first, chunks of ids:
                                     |    that batch's futures)       |   POST /v2/batch_status
    future.result() <----------------+--------------------------------+-- set_result / set_exception
                                                                      |   (once; dropped from table)

One lock (``Executor._lock``) guards everything ``submit()`` touches: the shut-down flag, the
queue (its Condition wakes the submitter), the registration cache and the progress counters.
The poller's table has its own lock; only the submitter thread and ``reload_tasks`` feed it.

Differences from ``ThreadPoolExecutor``/``ProcessPoolExecutor`` a user can rely on:

* A task that raises fails its future with ``TaskExecutionFailed``, whose ``str()`` carries the
  remote traceback (type name and message), not the original exception object: the endpoint
  may run another Python, and the service never unpickles user data.
* ``cancel()`` works until the task is handed to the service, then returns False.
* At interpreter exit, an executor left open sends what is queued and stops polling; tasks keep
  running on the endpoint and ``reload_tasks(task_group_id)`` fetches them later.

Differences from the reference ``globus_compute_sdk.Executor``: arguments are serialized in
``submit`` (a bad one raises there); a failed submission or registration fails only its own
futures, the executor goes on; a missing ``endpoint_id`` raises without shutting down;
``map`` works (``chunksize``, ``timeout``, ``buffersize``); results are polled over HTTPS
instead of streamed over AMQP, so ``amqp_port`` is accepted and ignored.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from globus_compute._executor_support import canonical, optional_uuid, registry_key, watch_for_exit
from globus_compute._map import (
    check_map_arguments,
    ordered_results,
    progress_bar,
    run_chunk,
    with_bar,
)
from globus_compute._poller import ResultPoller
from globus_compute._progress import Progress, TaskCounts
from globus_compute._rate_limit import burst_limiter_for, clamp_burst_window
from globus_compute._reload import fetch_task_group, resolve_finished
from globus_compute._submitter import (
    SubmitGroupKey,
    TaskItem,
    TaskSubmitter,
    canonical_json,
    set_exception_quietly,
)
from globus_compute._task_settings import TaskSettings
from globus_compute.batch import pack_task_payload
from globus_compute.environments import is_loopback_url
from globus_compute.errors import ResultPollingError
from globus_compute.future import ComputeFuture
from globus_compute.serialize import ComputeSerializer

log = logging.getLogger(__name__)

__all__ = ["Executor", "Progress"]

#: How long ``shutdown``/interpreter exit waits for the submitter to send what is queued.
_EXIT_FLUSH_TIMEOUT_S = 60.0


class Executor(TaskSettings, concurrent.futures.Executor):
    """Run Python functions on a Globus Compute endpoint with the ``concurrent.futures`` API.

    Args:
        endpoint_id: The endpoint to run on; may be set later, must be set before ``submit``.
        client: The ``Client`` to use; ``None`` builds ``Client()`` (may prompt a login).
        task_group_id: Group to submit into; ``None`` reuses the last group any Executor in
            this process used, or lets the service create one.
        resource_specification: Per-task resources (JSON-able dict), sent with every task.
        user_endpoint_config: Template variables for multi-user endpoints (JSON-able dict).
        label: Shown in ``repr`` only.
        batch_size: Most tasks per submit request.
        batch_interval: Longest a task waits for company while the submitter is busy, seconds.
            An idle executor sends a lone task at once.
        serializer: Replaces the client's ``ComputeSerializer`` (code, args and results).
        result_serializers: Strategies the endpoint should use for results.
        api_burst_limit: Non-full submit calls per window before pausing. ``None``: 4 against a
            remote service, off for a loopback (embedded) one. An int forces it on ([1, 8]).
        api_burst_window_s: The burst window, seconds ([1, 32]).
        amqp_port: Accepted for compatibility with the reference; results are polled instead.
        poll_interval_s: First pause between result polls of a remote service.
        max_poll_interval_s: Longest pause between polls while nothing completes.
        long_poll_s: How long a loopback service may hold a result poll.

    Raises:
        TypeError: An unknown keyword, or a non-JSON-able resource spec / endpoint config.
        ValueError: A malformed UUID.
    """

    def __init__(
        self,
        endpoint_id: uuid.UUID | str | None = None,
        client: Any = None,
        task_group_id: uuid.UUID | str | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        label: str = "",
        batch_size: int = 128,
        batch_interval: float = 0.01,
        serializer: ComputeSerializer | None = None,
        result_serializers: Iterable[Any] | None = None,
        api_burst_limit: int | None = None,
        api_burst_window_s: float = 16,
        amqp_port: int | None = None,
        *,
        poll_interval_s: float = 1.0,
        max_poll_interval_s: float = 15.0,
        long_poll_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        for key in kwargs:
            raise TypeError(f"'{key}' is an invalid argument for {type(self).__name__}")
        if amqp_port is not None:
            warnings.warn("amqp_port is ignored: results are polled over HTTPS", stacklevel=2)
        if client is None:
            from globus_compute.client import Client  # deferred: Client() may log in

            client = Client()
        self.client = client
        if serializer is not None:
            self.serializer = serializer
        self._lock = threading.Lock()
        self._init_task_settings(
            endpoint_id, task_group_id, resource_specification, user_endpoint_config,
            result_serializers,
        )  # fmt: skip
        self.label = label
        self.batch_size = max(1, int(batch_size))
        self.loopback = is_loopback_url(str(getattr(client, "service_url", "") or ""))
        limiter = burst_limiter_for(
            api_burst_limit, api_burst_window_s, self.batch_size, self.loopback
        )
        self.api_burst_limit = None if limiter is None else limiter.limit
        self.api_burst_window_s = clamp_burst_window(api_burst_window_s)
        self._poll_settings: dict[str, Any] = {
            "loopback": self.loopback,
            "chunk_size": 1024 if self.loopback else self.batch_size,
            "long_poll_s": long_poll_s,
            "min_interval_s": poll_interval_s,
            "max_interval_s": max_poll_interval_s,
        }
        self._shutdown = False
        self._exiting = False
        self._registry: dict[Any, str] = {}
        self._counts = TaskCounts()
        self._poller: ResultPoller | None = None
        self._pollers: list[ResultPoller] = []
        self._submitter = TaskSubmitter(
            client,
            self,
            self._lock,
            batch_size=self.batch_size,
            batch_interval=max(0.0, batch_interval),
            limiter=limiter,
        )

    def __repr__(self) -> str:
        label = f"{self.label}; " if self.label else ""
        ep = f"ep_id:{self.endpoint_id}; " if self.endpoint_id else ""
        return f"{type(self).__name__}<{label}{ep}tg_id:{self.task_group_id}; bs:{self.batch_size}>"

    # -- configuration -------------------------------------------------------------------------

    @property
    def task_count_submitted(self) -> int:
        """Tasks the service has accepted from this executor."""
        return self._counts.sent

    def progress(self) -> Progress:
        """Counts of this executor's tasks by stage, for progress displays and logs."""
        with self._lock:
            return self._counts.snapshot(self._submitter.queued())

    # -- registration --------------------------------------------------------------------------

    def register_function(
        self, fn: Callable[..., Any], function_id: str | None = None, **kwargs: Any
    ) -> str:
        """Register ``fn`` (or record a known ``function_id`` for it) in this executor's cache.

        ``submit`` does this on first use; call it to pass registration options (``public``,
        ``group``, ``description``, ...) to ``Client.register_function``.

        Raises:
            RuntimeError: The executor is shut down.
            ValueError: ``fn`` is already registered under another id.
        """
        self._check_open("register functions")
        key = registry_key(fn)
        with self._lock:
            cached = self._registry.get(key) if key is not None else None
        if cached is not None:
            if function_id is not None and canonical(function_id, "function_id") == cached:
                log.warning("Function already registered as function id: %s", cached)
                return cached
            extra = f" (attempted id: {function_id})" if function_id else ""
            raise ValueError(f"Function already registered as function id: {cached}{extra}")
        if function_id is not None:
            fid = canonical(function_id, "function_id")
        else:
            fid = canonical(self.client.register_function(fn, **kwargs), "function_id")
        if key is not None:
            with self._lock:
                fid = self._registry.setdefault(key, fid)
        return fid

    def register_source_code(self, source: str, function_name: str, **kwargs: Any) -> str:
        """Register Python ``source`` defining ``function_name``; runs on any endpoint Python.

        Raises:
            RuntimeError: The executor is shut down.
            ValueError: The same source is already registered with this executor.
        """
        self._check_open("register functions")
        key = ("source", source, function_name)
        with self._lock:
            if key in self._registry:
                raise ValueError(f"Source already registered as function id: {self._registry[key]}")
        fid = canonical(
            self.client.register_source_code(source, function_name, **kwargs), "function_id"
        )
        with self._lock:
            return self._registry.setdefault(key, fid)

    def _function_id_for(self, fn: Callable[..., Any]) -> str:
        key = registry_key(fn)
        if key is not None:
            with self._lock:
                cached = self._registry.get(key)
            if cached is not None:
                return cached
        return self.register_function(fn)

    # -- submission ----------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> ComputeFuture:
        """Run ``fn(*args, **kwargs)`` on the endpoint; returns its future at once.

        ``fn`` is registered on first use; the arguments are serialized here, so a value that
        cannot be serialized raises here and affects nothing else.

        Raises:
            RuntimeError: The executor is shut down.
            ValueError: No ``endpoint_id`` is set.
            TypeError, SerializationError: The arguments cannot be sent.
        """
        self._check_open("submit tasks")
        self._require_endpoint()
        return self._enqueue(self._function_id_for(fn), args, kwargs)

    def submit_to_registered_function(
        self,
        function_id: uuid.UUID | str,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> ComputeFuture:
        """Run an already registered function by id (no registration call)."""
        self._check_open("submit tasks")
        self._require_endpoint()
        return self._enqueue(canonical(function_id, "function_id"), args, kwargs)

    def _enqueue(self, function_id: str, args: Any, kwargs: Any) -> ComputeFuture:
        payload = pack_task_payload(self.serializer, args, kwargs)
        key = SubmitGroupKey(
            self._endpoint_str,
            self._task_group_str,
            canonical_json(self._resource_specification),
            canonical_json(self._user_endpoint_config),
            self._result_serializer_paths,
        )
        future = ComputeFuture()
        item = TaskItem(future, function_id, payload, key, time.monotonic())
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self!r} is shutdown; no new functions may be executed")
            watch_for_exit(self)
            self._submitter.put_locked(item)
            self._counts.add_submitted(1)  # with the put: progress() sees both or neither
        return future

    def _check_open(self, what: str) -> None:
        if self._shutdown:
            raise RuntimeError(f"{self!r} is shutdown; cannot {what}")

    def _require_endpoint(self) -> None:
        if self._endpoint_id is None:
            raise ValueError(
                "No endpoint_id set. Did you forget to set it at construction?\n"
                "  Hint: Executor(endpoint_id=<ep_id>), or ex.endpoint_id = <ep_id>"
            )

    # -- callbacks from the submitter and poller threads (SubmitterHost) ----------------------

    def current_task_group_id(self) -> str | None:
        return self._task_group_str

    def learn_task_group_id(self, task_group_id: str) -> None:
        if self._task_group_id is None:
            self.task_group_id = task_group_id  # type: ignore[assignment]

    def hand_off(self, pairs: list[tuple[str, ComputeFuture]]) -> None:
        self._counts.add_sent(len(pairs))
        self._watch(pairs)

    def count_failed(self, n: int) -> None:
        self._counts.add_failed(n)

    def count_cancelled(self, n: int) -> None:
        self._counts.add_cancelled(n)

    def submitter_exited(self) -> None:
        with self._lock:
            poller = self._poller
        if poller is not None:
            poller.close_when_idle()

    def _watch(self, pairs: list[tuple[str, ComputeFuture]]) -> None:
        """Give futures to the live poller, starting a new one if the last has ended."""
        while True:
            with self._lock:
                poller = self._poller
                if poller is None or not poller.accepting:
                    if self._exiting:
                        break
                    poller = ResultPoller(
                        self.client, on_resolved=self._counts.add_resolved, **self._poll_settings
                    )
                    if self._shutdown:
                        poller.close_when_idle()
                    self._poller = poller
                    self._pollers.append(poller)
            if poller.watch(pairs):
                return
        err = ResultPollingError("the interpreter is exiting; results are no longer polled")
        for _, future in pairs:
            set_exception_quietly(future, err)
        self._counts.add_resolved(0, len(pairs))

    # -- shutdown ------------------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; send (or cancel) what is queued; optionally wait for every result.

        Idempotent. Later ``submit`` calls raise ``RuntimeError``.

        Args:
            wait: Block until every future of this executor is resolved and its threads ended.
            cancel_futures: Cancel tasks not yet handed to the service instead of sending them.
        """
        with self._lock:
            self._shutdown = True
            cancelled = self._submitter.take_all_locked() if cancel_futures else []
            self._submitter.close_locked()
            poller = self._poller
        n = sum(1 for item in cancelled if item.future.cancel())
        if n:
            self.count_cancelled(n)
        if poller is not None:
            poller.close_when_idle()
        if wait:
            self._join_threads()

    def _join_threads(self, timeout: float | None = None) -> None:
        if self._submitter.started:
            self._submitter.thread.join(timeout)
        # The submitter may have started a fresh poller while flushing; join every one.
        with self._lock:
            pollers = list(self._pollers)
        for poller in pollers:
            poller.join(timeout)

    def _stop_for_exit(self) -> None:
        """Interpreter exit: flush the queue to the service, stop polling, end the threads."""
        self.shutdown(wait=False)
        if self._submitter.started:
            self._submitter.thread.join(_EXIT_FLUSH_TIMEOUT_S)
        with self._lock:
            self._exiting = True
            pollers = list(self._pollers)
        for poller in pollers:
            poller.stop("the interpreter is exiting")
        for poller in pollers:
            poller.join()

    # -- map -----------------------------------------------------------------------------------

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
        progress: bool = False,
    ) -> Iterator[Any]:
        """``fn`` applied to the items of ``iterables``, in order, computed on the endpoint.

        Args:
            fn: The function; registered once.
            *iterables: Argument sources, zipped as in the builtin ``map``.
            timeout: Seconds, counted from this call, after which ``next()`` raises
                ``TimeoutError`` (and cancels what is still queued).
            chunksize: Calls per task; >1 sends fewer, larger tasks (like ProcessPoolExecutor).
            buffersize: Most tasks submitted ahead of the consumer (Python 3.14 semantics).
            progress: Show a ``tqdm`` progress bar (``pip install tqdm``).

        Raises:
            ValueError: ``chunksize`` < 1 or ``buffersize`` < 1.
            ImportError: ``progress=True`` without tqdm installed.
        """
        check_map_arguments(chunksize, buffersize)
        bar = progress_bar(iterables) if progress else None
        end_time = None if timeout is None else time.monotonic() + timeout
        calls: Iterator[tuple[Any, ...]] = zip(*iterables, strict=False)
        chunked = chunksize > 1
        units = iter(lambda: list(itertools.islice(calls, chunksize)), []) if chunked else calls
        send = self._map_sender(fn, chunked)
        results = ordered_results(self, send, units, end_time, buffersize, chunked=chunked)
        return results if bar is None else with_bar(results, bar)

    def _map_sender(self, fn: Callable[..., Any], chunked: bool) -> Callable[..., ComputeFuture]:
        """What ``map`` calls per unit: one call's arguments, or a chunk run by ``run_chunk``."""
        function_id = self._function_id_for(run_chunk if chunked else fn)
        self._require_endpoint()
        if chunked:
            return lambda ex, chunk: ex._checked_enqueue(function_id, (fn, chunk), None)
        return lambda ex, args: ex._checked_enqueue(function_id, args, None)

    def _checked_enqueue(self, function_id: str, args: Any, kwargs: Any) -> ComputeFuture:
        self._check_open("submit tasks")
        return self._enqueue(function_id, args, kwargs)

    # -- reload --------------------------------------------------------------------------------

    def reload_tasks(self, task_group_id: uuid.UUID | str | None = None) -> list[ComputeFuture]:
        """Futures for every task of a task group, e.g. after a crash or from a new process.

        Finished tasks come back resolved; pending ones are polled like submitted tasks. A task
        this executor already watches keeps its existing future.

        Args:
            task_group_id: The group; defaults to this executor's ``task_group_id`` (and,
                when given, becomes it).

        Raises:
            ValueError: No task group id, or the service answered for another group.
            RuntimeError: The executor is shut down.
        """
        self._check_open("reload tasks")
        tg = optional_uuid(task_group_id, "task_group_id") or self._task_group_id
        if tg is None:
            raise ValueError("must specify a task_group_id in order to reload tasks")
        task_ids = fetch_task_group(self.client, str(tg))
        if task_group_id is not None:
            self.task_group_id = tg  # type: ignore[assignment]
        with self._lock:
            poller = self._poller
        futures: list[ComputeFuture] = []
        fresh: list[tuple[str, ComputeFuture]] = []
        for task_id in task_ids:
            future = poller.future_for(task_id) if poller is not None else None
            if future is None:
                future = ComputeFuture(task_id)
                future.set_running_or_notify_cancel()
                fresh.append((task_id, future))
            futures.append(future)
        self._counts.add_submitted(len(fresh))
        chunk = self._poll_settings["chunk_size"]
        pending = resolve_finished(self.client, fresh, chunk, self._counts.add_resolved)
        if pending:
            self.hand_off(pending)
        return futures
