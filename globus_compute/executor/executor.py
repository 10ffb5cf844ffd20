"""``Executor``: a ``concurrent.futures.Executor`` that runs functions on Globus Compute endpoints.

Data flow (each box on the right is a named thread, started on first use)::

    user threads                     |  GlobusComputeTaskSubmitter    |  GlobusComputeResultPoller
    ------------                     |  (submitter.TaskSubmitter)     |  (poller.ResultPoller, the
    submit(fn, *a, **kw)             |                                |   watcher's current one)
      register fn once (registry) ---+-> POST /v3/functions           |
      pack args NOW (bad arg raises) |                                |
      settings.submit_key()          |                                |
      submitter.put(item) ---------->| groups by submit key, sends on |
      return ComputeFuture           | size / bytes / timer / idle:   |
                                     |   POST /v3/endpoints/{ep}/submit
                                     |   future.task_id = tid         |
                                     |   watcher.watch([(tid, fut)])->| table {tid: future}, oldest
                                     |   (a failed send fails only    |   first, chunks of ids:
                                     |    that batch's futures)       |   POST /v2/batch_status
    future.result() <----------------+--------------------------------+-- set_result / set_exception
                                                                      |   (once; dropped from table)

Each piece of state ``submit()`` touches has one owner and one lock: the queue and its "closed"
flag are the submitter's (so "shut down?" and "enqueue" are one step), the registration cache is
the registry's, the counts are ``TaskCounts``'s, and the per-task settings are one immutable
``TaskSettings`` value the Executor swaps in its ``SettingsCell``. The result watcher keeps the
current poller and replaces it when it gives up; only the submitter thread and ``reload_tasks``
feed it.

The contract of ``concurrent.futures``, kept to the letter, including its edges:

* **Broken.** If a background thread dies (a defect, never a bad task or a refused request),
  the executor is broken, as a ``ProcessPoolExecutor`` whose worker died: every future that
  thread owned fails with ``ExecutorBroken`` (a ``concurrent.futures.BrokenExecutor``) saying
  which thread and why, and so does every later ``submit``. The other thread finishes what it
  owns. A service answer that cannot be used fails only its own batch or task.
* **Dropped without shutdown.** The threads hold only a weak reference to their executor (as
  the stdlib's workers do), so an executor nobody references is collected even while tasks run.
  What it owned is finished, not failed: queued tasks are sent, results keep arriving for the
  futures the user still holds, and then the threads end, as after ``shutdown(wait=False)``.
  (``Executor(...).submit(fn).result()`` works.) An idle thread notices within a second.
* **Interpreter exit.** An executor left open (or dropped, still finishing) sends what is
  queued and stops polling; futures still waiting fail with ``ResultPollingError``, the tasks
  keep running on the endpoint and ``reload_tasks(task_group_id)`` fetches them later. A
  ``submit`` from then on (an ``atexit`` hook, say) raises ``ExecutorShutdown('cannot schedule
  new futures after interpreter shutdown')``, a ``RuntimeError`` as in the stdlib.
* **Fork.** An executor belongs to the process that made it: in a child made by ``os.fork()``
  (``multiprocessing``'s "fork" start method included) every method that would start work
  raises ``ExecutorBroken`` naming fork, and ``shutdown()`` is a no-op. Threads do not survive
  fork, and a child reusing the parent's HTTPS connections would corrupt both processes'
  requests; create the executor in the child instead.
* **References.** Nothing of the executor keeps a result alive once its future is resolved and
  the user lets go of it (``map`` included), nor a submitted callable (``registry``).

Differences from ``ThreadPoolExecutor``/``ProcessPoolExecutor`` a user can rely on:

* A task that raises fails its future with ``TaskExecutionFailed``, whose ``str()`` carries the
  remote traceback (type name and message), not the original exception object: the endpoint
  may run another Python, and the service never unpickles user data.
* ``cancel()`` works until the task is handed to the service, then returns False.
* A result that cannot be deserialized here fails its future with ``DeserializationError``
  naming the task (even if unpickling raised ``SystemExit``); other futures are not affected.

Differences from the reference ``globus_compute_sdk.Executor``: arguments are serialized in
``submit`` (a bad one raises there); a failed submission or registration fails only its own
futures, the executor goes on; a missing ``endpoint_id`` raises without shutting down;
``map`` works (``chunksize``, ``timeout``, ``buffersize``); results are polled over HTTPS
instead of streamed over AMQP, so ``amqp_port`` is accepted, readable and ignored. Since
results cost requests too, every request takes its turn in the client's request budget (shared
by every Client and Executor of the identity), polls ask about every pending task at once, and a
429 fails no future: it is waited out and resent.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import itertools
import logging
import os
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from globus_compute.client.batch import pack_task_payload
from globus_compute.client.hardware_report import run_hardware_report
from globus_compute.errors import ExecutorBroken, ExecutorShutdown
from globus_compute.executor import process_hooks
from globus_compute.executor.burst_limiter import burst_limiter_for, clamp_burst_window
from globus_compute.executor.client_protocol import ExecutorClient
from globus_compute.executor.future import ComputeFuture, wait_for_callbacks
from globus_compute.executor.map import (
    check_map_arguments,
    ordered_results,
    progress_bar,
    run_chunk,
)
from globus_compute.executor.poller import PollSettings
from globus_compute.executor.progress import Progress, TaskCounts
from globus_compute.executor.registry import FunctionRegistry, code_digest
from globus_compute.executor.reload import fetch_task_group, resolve_finished
from globus_compute.executor.settings import SettingsCell, TaskSettings, default_task_group_id
from globus_compute.executor.submitter import TaskItem, TaskSubmitter
from globus_compute.executor.watcher import ResultWatcher
from globus_compute.protocol.ids import optional_uuid, require_uuid
from globus_compute.serialize import ComputeSerializer

log = logging.getLogger(__name__)

__all__ = ["Executor", "Progress"]

#: ``run_hardware_report`` as the text ``get_worker_hardware_details`` registers (it is
#: self-contained by design, see ``client.hardware_report``).
_HARDWARE_REPORT_SOURCE = inspect.getsource(run_hardware_report)


class Executor(concurrent.futures.Executor):
    """Run Python functions on a Globus Compute endpoint with the ``concurrent.futures`` API.

    Args:
        endpoint_id: The endpoint to run on; may be set later, must be set before ``submit``.
        client: The ``Client`` to use; ``None`` builds ``Client()`` (may prompt a login). Any
            object implementing ``client_protocol.ExecutorClient`` will do.
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
        api_burst_limit: The reference's rule: at most this many non-full submit calls per
            ``api_burst_window_s`` before pausing ([1, 8]). ``None`` (default): no such rule;
            every request waits for its turn in the client's ``request_budget`` instead.
        api_burst_window_s: The burst window, seconds ([1, 32]).
        amqp_port: Accepted (and readable back) for compatibility with the reference; results
            are polled instead.
        poll_interval_s: First pause between result polls of a service that does not hold
            polls (``client.long_poll`` false: the hosted service).
        max_poll_interval_s: Longest pause between such polls while nothing completes.
        long_poll_s: How long a service that holds polls (the embedded one) may hold one.

    Raises:
        TypeError: An unknown keyword, or a non-JSON-able resource spec / endpoint config.
        ValueError: A malformed UUID.
        SerdeError: A result serializer that is not a known strategy.
    """

    def __init__(
        self,
        endpoint_id: uuid.UUID | str | None = None,
        client: ExecutorClient[Any] | None = None,
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
        poll_interval_s: float = 0.25,
        max_poll_interval_s: float = 15.0,
        long_poll_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        for key in kwargs:
            raise TypeError(f"'{key}' is an invalid argument for {type(self).__name__}")
        if amqp_port is not None:
            warnings.warn("amqp_port is ignored: results are polled over HTTPS", stacklevel=2)
        self._amqp_port = amqp_port
        if client is None:
            from globus_compute.client import Client  # deferred: Client() may log in

            client = Client()
        self.client: ExecutorClient[Any] = client
        if serializer is not None:
            self.serializer = serializer
        self._settings = SettingsCell(
            TaskSettings.validated(
                endpoint_id, task_group_id or default_task_group_id(), resource_specification,
                user_endpoint_config, result_serializers,
            )
        )  # fmt: skip
        self.label = label
        self.batch_size = max(1, int(batch_size))
        limiter = burst_limiter_for(api_burst_limit, api_burst_window_s, self.batch_size)
        self.api_burst_limit = None if limiter is None else limiter.limit
        self.api_burst_window_s = clamp_burst_window(api_burst_window_s)
        self._poll_settings = PollSettings.for_service(
            client.long_poll,
            long_poll_s=long_poll_s,
            min_interval_s=poll_interval_s,
            max_interval_s=max_poll_interval_s,
        )
        self._shutdown = False
        self._stops_at_exit = False
        self._pid = os.getpid()  # see process_hooks: an Executor belongs to its process
        self._registry = FunctionRegistry()
        self._counts = TaskCounts()
        # The threads get a weak reference to this Executor and nothing else of it, so a
        # dropped Executor is collected and its threads wind down (module docstring).
        owner = weakref.ref(self)
        self._watcher = ResultWatcher(client, self._poll_settings, self._counts, owner=owner)
        self._submitter = TaskSubmitter(
            client,
            self._watcher,
            self._counts,
            current_task_group=self._settings.current_task_group,
            learn_task_group=self._settings.learn_task_group,
            batch_size=self.batch_size,
            batch_interval=max(0.0, batch_interval),
            limiter=limiter,
            owner=owner,
        )

    def __repr__(self) -> str:
        label = f"{self.label}; " if self.label else ""
        ep = f"ep_id:{self.endpoint_id}; " if self.endpoint_id else ""
        return f"{type(self).__name__}<{label}{ep}tg_id:{self.task_group_id}; bs:{self.batch_size}>"

    # -- per-task settings (the reference's attributes; each set makes a new TaskSettings) -----

    @property
    def endpoint_id(self) -> uuid.UUID | None:
        """The endpoint new tasks go to (checked at submit time)."""
        return self._settings.current.endpoint_id

    @endpoint_id.setter
    def endpoint_id(self, value: uuid.UUID | str | None) -> None:
        self._change_settings(endpoint_id=value)

    @property
    def task_group_id(self) -> uuid.UUID | None:
        """The task group new tasks join; setting it also sets the default of later Executors."""
        return self._settings.current.task_group_id

    @task_group_id.setter
    def task_group_id(self, value: uuid.UUID | str | None) -> None:
        self._change_settings(task_group_id=value)

    @property
    def resource_specification(self) -> dict[str, Any] | None:
        """Per-task resource requirements; snapshotted (deep-copied) at each submit."""
        return self._settings.current.resource_specification

    @resource_specification.setter
    def resource_specification(self, value: dict[str, Any] | None) -> None:
        self._change_settings(resource_specification=value)

    @property
    def user_endpoint_config(self) -> dict[str, Any] | None:
        """Multi-user endpoint template values; snapshotted (deep-copied) at each submit."""
        return self._settings.current.user_endpoint_config

    @user_endpoint_config.setter
    def user_endpoint_config(self, value: dict[str, Any] | None) -> None:
        self._change_settings(user_endpoint_config=value)

    @property
    def result_serializers(self) -> list[Any] | None:
        """Strategies the endpoint tries, in order, to serialize results."""
        return self._settings.current.result_serializers

    @result_serializers.setter
    def result_serializers(self, value: Iterable[Any] | None) -> None:
        self._change_settings(result_serializers=value)

    @property
    def amqp_port(self) -> int | None:
        """The reference's AMQP result-queue port, kept only to be read back (None by default).

        Results are polled over HTTPS, so no value changes anything; setting one warns.
        """
        return self._amqp_port

    @amqp_port.setter
    def amqp_port(self, value: int | None) -> None:
        if value is not None:
            warnings.warn("amqp_port is ignored: results are polled over HTTPS", stacklevel=2)
        self._amqp_port = value

    @property
    def serializer(self) -> ComputeSerializer:
        """The client's serializer: function code, task arguments and results."""
        return self.client.fx_serializer

    @serializer.setter
    def serializer(self, value: ComputeSerializer) -> None:
        if not isinstance(value, ComputeSerializer):
            raise TypeError(f"Expected ComputeSerializer, got {type(value).__name__}")
        self.client.fx_serializer = value

    def _change_settings(self, **change: Any) -> None:
        self._settings.change(**change)

    # -- progress ------------------------------------------------------------------------------

    @property
    def task_count_submitted(self) -> int:
        """Tasks the service has accepted from this executor."""
        return self._counts.sent

    def progress(self) -> Progress:
        """Counts of this executor's tasks by stage, for progress displays and logs, and the
        offline endpoints running tasks wait on (``waiting_on``: endpoint id -> offline since,
        unix seconds; the poller checks at most every 30 s per endpoint, within the request
        budget, and a warning is logged once per offline spell)."""
        return self._counts.snapshot(self._watcher.waiting_on())

    # -- registration --------------------------------------------------------------------------

    def register_function(
        self, fn: Callable[..., Any], function_id: str | None = None, **kwargs: Any
    ) -> str:
        """Register ``fn`` (or record a known ``function_id`` for it) in this executor's cache.

        ``submit`` does this on first use; call it to pass registration options (``public``,
        ``group``, ``description``, ...) to ``Client.register_function``. The cache keeps no
        reference to ``fn`` (see ``registry``).

        Raises:
            ExecutorShutdown: The executor is shut down.
            ValueError: ``fn`` is already registered under another id.
        """
        self._check_open("register functions")
        cached = self._registry.get(fn)
        if cached is not None:
            if function_id is not None and require_uuid(function_id, "function_id") == cached:
                log.warning("Function already registered as function id: %s", cached)
                return cached
            extra = f" (attempted id: {function_id})" if function_id else ""
            raise ValueError(f"Function already registered as function id: {cached}{extra}")
        digest = code_digest(self.client.fx_serializer, fn)
        if function_id is None:
            function_id = self.client.register_function(fn, **kwargs)
        return self._registry.add(fn, require_uuid(function_id, "function_id"), digest)

    def register_source_code(self, source: str, function_name: str, **kwargs: Any) -> str:
        """Register Python ``source`` defining ``function_name``; runs on any endpoint Python.

        Raises:
            ExecutorShutdown: The executor is shut down.
            ValueError: The same source is already registered with this executor.
        """
        self._check_open("register functions")
        cached = self._registry.get_source(source, function_name)
        if cached is not None:
            raise ValueError(f"Source already registered as function id: {cached}")
        function_id = self.client.register_source_code(source, function_name, **kwargs)
        return self._registry.add_source(
            source, function_name, require_uuid(function_id, "function_id")
        )

    def get_worker_hardware_details(self, timeout: float | None = None) -> str:
        """Run a hardware report on one of the endpoint's workers and return it as text.

        The same report as ``Client.get_worker_hardware_details`` (Python, OS, CPU, memory,
        disk, GPUs), sent as source text so it runs on any endpoint Python, and registered
        once per executor. Blocks until the report arrives, as the reference's does.

        Args:
            timeout: Seconds to wait for the report; ``None`` waits as long as it takes.

        Raises:
            TimeoutError: No report within ``timeout``.
            TaskExecutionFailed: The report failed on the worker.
            ExecutorShutdown, ExecutorBroken, ValueError: As ``submit``.
        """
        self._check_open("submit tasks")
        self._require_endpoint()
        name = run_hardware_report.__name__
        function_id = self._registry.get_source(_HARDWARE_REPORT_SOURCE, name)
        if function_id is None:
            registered = self.client.register_source_code(
                _HARDWARE_REPORT_SOURCE, name, description=inspect.getdoc(run_hardware_report)
            )
            function_id = self._registry.add_source(
                _HARDWARE_REPORT_SOURCE, name, require_uuid(registered, "function_id")
            )
        future = self._enqueue(function_id, ("Compute Endpoint worker",), None)
        report: str = future.result(timeout=timeout)
        return report

    def _function_id_for(self, fn: Callable[..., Any]) -> str:
        """``fn``'s function id: this very object's, else its code's, else a new registration."""
        cached = self._registry.get(fn)
        if cached is not None:
            return cached
        digest = code_digest(self.client.fx_serializer, fn)
        function_id = self._registry.get_code(digest)
        if function_id is None:
            function_id = require_uuid(self.client.register_function(fn), "function_id")
        return self._registry.add(fn, function_id, digest)

    # -- submission ----------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> ComputeFuture:
        """Run ``fn(*args, **kwargs)`` on the endpoint; returns its future at once.

        ``fn`` is registered on first use; the arguments are serialized here, so a value that
        cannot be serialized raises here and affects nothing else.

        Raises:
            ExecutorShutdown: The executor is shut down, or the interpreter is exiting.
            ExecutorBroken: A background thread of the executor died, or this is a child
                process forked from the one that made the executor.
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
        return self._enqueue(require_uuid(function_id, "function_id"), args, kwargs)

    def _enqueue(self, function_id: str, args: Any, kwargs: Any) -> ComputeFuture:
        payload = pack_task_payload(self.client.fx_serializer, args, kwargs)
        key = self._settings.current.submit_key()
        future = ComputeFuture()
        if not self._stops_at_exit:
            self._stop_at_exit()
        if not self._submitter.put(TaskItem(future, function_id, payload, key, time.monotonic())):
            raise ExecutorShutdown(f"{self!r} is shutdown; no new functions may be executed")
        return future

    def _check_open(self, what: str) -> None:
        """Raise unless this executor can take work in this process now."""
        if os.getpid() != self._pid:
            raise ExecutorBroken(
                f"{self!r} was created in process {self._pid}; this is process {os.getpid()}, "
                "a child made by os.fork(). An Executor's threads and connections do not "
                f"survive fork, so it cannot {what} here: create a new Executor (and Client) "
                "in the child, or start children with the 'spawn' or 'forkserver' method."
            )
        if self._shutdown:
            raise ExecutorShutdown(f"{self!r} is shutdown; cannot {what}")
        if process_hooks.interpreter_exiting():
            raise ExecutorShutdown(process_hooks.SHUTDOWN_TEXT)
        broken = self._submitter.broken
        if broken is not None:
            raise ExecutorBroken(f"{self!r} is broken; cannot {what}. {broken}")
        stopped = self._watcher.stop_reason
        if stopped is not None:
            raise ExecutorShutdown(f"{self!r} delivers no more results ({stopped}); cannot {what}")

    def _require_endpoint(self) -> None:
        if self._settings.current.endpoint_id is None:
            raise ValueError(
                "No endpoint_id set. Did you forget to set it at construction?\n"
                "  Hint: Executor(endpoint_id=<ep_id>), or ex.endpoint_id = <ep_id>"
            )

    # -- life cycle ----------------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; send (or cancel) what is queued; optionally wait for every result.

        Idempotent; safe from a done-callback (it then does not wait for the callback itself).
        With ``wait``, it returns once every done-callback handed to a callback thread so far
        has run (process-wide: other Executors' too; see ``future``). Later ``submit`` calls
        raise ``ExecutorShutdown`` (a ``RuntimeError``).
        In a child process forked from the one that made the executor, it only marks it shut
        down: its threads and tasks are the parent's.

        Args:
            wait: Block until every future of this executor is resolved, its threads ended and
                the callbacks of resolved futures run.
            cancel_futures: Cancel tasks not yet handed to the service instead of sending them.
        """
        self._shutdown = True
        if os.getpid() != self._pid:
            return
        self._submitter.close(cancel_queued=cancel_futures)
        self._watcher.close_when_idle()
        if wait:
            self._submitter.join()
            # The submitter may have handed tasks to a fresh poller while flushing; join it too.
            self._watcher.join()
            wait_for_callbacks()  # the done-callbacks of every future resolved by then

    def _get_result_watcher(self) -> ResultWatcher:
        """The result watcher, as the reference SDK exposes it (Parsl calls its ``shutdown``).

        Available at any time, before the first submit and after ``shutdown`` alike;
        ``_get_result_watcher().shutdown(wait=False, cancel_futures=True)`` stops delivering
        results at once and fails every future still waiting (see ``ResultWatcher.shutdown``).
        After that the executor takes no more tasks.
        """
        return self._watcher

    def _stop_at_exit(self) -> None:
        """Enrol for interpreter exit before the first background thread starts.

        Raises:
            ExecutorShutdown: The interpreter is already shutting down.
        """
        process_hooks.enrol(self._submitter, self._watcher)
        self._stops_at_exit = True

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
        units: Iterator[Any] = (
            iter(lambda: list(itertools.islice(calls, chunksize)), []) if chunked else calls
        )
        send = self._map_sender(fn, chunked)
        return ordered_results(self, send, units, end_time, buffersize, chunked=chunked, bar=bar)

    def _map_sender(
        self, fn: Callable[..., Any], chunked: bool
    ) -> Callable[[Executor, Any], ComputeFuture]:
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
            ValueError: No task group id, or the service answered for another group
                (``InvalidServiceResponse``).
            ExecutorShutdown: The executor is shut down.
        """
        self._check_open("reload tasks")
        tg = optional_uuid(task_group_id, "task_group_id") or self._settings.current.task_group_id
        if tg is None:
            raise ValueError("must specify a task_group_id in order to reload tasks")
        task_ids = fetch_task_group(self.client, str(tg))
        if task_group_id is not None:
            self.task_group_id = tg
        futures: list[ComputeFuture] = []
        fresh: list[tuple[str, ComputeFuture]] = []
        for task_id in task_ids:
            future = self._watcher.future_for(task_id)
            if future is None:
                future = ComputeFuture(task_id)
                future.set_running_or_notify_cancel()
                fresh.append((task_id, future))
            futures.append(future)
        self._counts.add_submitted(len(fresh))
        chunk = self._poll_settings.chunk_size
        pending = resolve_finished(self.client, fresh, chunk, self._counts.add_resolved)
        if pending:
            if not self._stops_at_exit:
                self._stop_at_exit()
            self._watcher.watch(pending)
        return futures
