"""The ``parsl`` engine: tasks run on Parsl's HighThroughputExecutor (HTEX).

HTEX brings what the process engine cannot: blocks of workers started through a batch
scheduler (Slurm, PBS Pro, ...) or on this machine, scaled between ``min_blocks`` and
``max_blocks``, plus MPI mode. Each task still runs through the same
:class:`~globus_compute.endpoint.execution.TaskRunner` as in the process engine, inside the
HTEX worker, so results and traceback texts are identical::

    submit(tasks) ──► refuse alone: user_endpoint_config, a resource_specification HTEX rejects
          │
          └─► htex.submit_payload({task_executor: run_in_htex_worker, resource_spec}, task)
                   interchange ──► manager (one per node) ──► HTEX worker: TaskRunner.run(task)
                                                                         │ TaskResult
          done queue ◄── HTEXFuture done-callback ◄── HTEX result thread ◄─┘
              │
              └─► [parsl-engine-results thread]: a TaskResult, or for a lost worker or manager
                  (Parsl's WorkerLost/ManagerLost) a retry within the budget, else failure text
                  ──► result_sink(batch)

``user_endpoint_config`` belongs to multi-user endpoints, which start one engine per user
from a template; this engine serves its single owner and fails such tasks with a clear error
(``execution.refusal_text``, shared by every engine) without sending them to HTEX.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import parsl  # noqa: F401  (an optional extra: fail here, at engine selection, if missing)

from globus_compute.endpoint.config import (
    EndpointConfig,
    build_parsl_executor,
    load_endpoint_config,
    scaling_options,
)
from globus_compute.endpoint.engines.base import Engine, EngineContext, attempts_allowed
from globus_compute.endpoint.execution import refusal_text
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.protocol.agent import ClaimedTask, TaskResult, WorkerStatus
from globus_compute.protocol.results import failed_result, lost_task_text

if TYPE_CHECKING:
    from parsl.executors import HighThroughputExecutor
    from parsl.jobs.job_status_poller import JobStatusPoller

    from globus_compute.endpoint.execution import TaskRunner

log = logging.getLogger(__name__)

#: Most results handed to the sink in one call; bounds the size of one results request.
MAX_RESULT_BATCH = 1000
#: How stale the interchange's manager list in ``status()`` may be, in seconds.
STATUS_MAX_AGE_S = 0.5
#: Longest a finished result waits for others to share its batch, in seconds.
LINGER_S = 0.002
#: How long the results thread waits for a result before re-checking its stop event.
IDLE_WAIT_S = 0.2

#: The commands HTEX runs by name (see :func:`put_parsl_scripts_on_path`).
PARSL_SCRIPTS = ("interchange.py", "process_worker_pool.py")

#: Import path HTEX workers call for each task (Parsl's ``task_executor`` context key).
WORKER_ENTRY = f"{__name__}.run_in_htex_worker"

# One runner per HTEX worker process, endpoint and allow-list: its function cache outlives a task.
_RUNNERS: dict[tuple[str, tuple[str, ...]], TaskRunner] = {}


def run_in_htex_worker(
    buffer: bytes, endpoint_id: str, allowed_serializers: Sequence[str] = ()
) -> TaskResult:
    """Run one pickled ``ClaimedTask`` inside an HTEX worker; never raises for the task.

    HTEX calls this through the ``task_executor`` context instead of its own
    ``execute_task``, so the task buffer is read by our serializer (enforcing the endpoint's
    ``allowed_serializers``), not Parsl's.
    """
    key = (endpoint_id, tuple(allowed_serializers))
    runner = _RUNNERS.get(key)
    if runner is None:
        from globus_compute.endpoint.execution import TaskRunner

        runner = _RUNNERS[key] = TaskRunner(endpoint_id, allowed_serializers=key[1])
    task: ClaimedTask = pickle.loads(buffer)
    return runner.run(task)


class ParslEngine(Engine):
    """Runs tasks on a Parsl HighThroughputExecutor described by an endpoint config.

    Args:
        workers: Workers per node when the config does not set ``max_workers_per_node``.
        config: An :class:`~globus_compute.endpoint.config.EndpointConfig`, a path to a YAML
            endpoint config, or None for one local block of ``workers`` workers.
        run_dir: Where HTEX keeps its logs and submit scripts. None: the config's ``run_dir``,
            else a temporary directory removed at shutdown.
    """

    name = "parsl"

    def __init__(
        self,
        workers: int | None = None,
        *,
        config: EndpointConfig | str | Path | None = None,
        run_dir: str | Path | None = None,
    ) -> None:
        if config is None:
            config = EndpointConfig()
        elif not isinstance(config, EndpointConfig):
            config = load_endpoint_config(config)
        self.config = config
        self.workers = workers
        # Built now, so a bad config fails before the agent registers; HTEX and providers
        # start nothing until ``start``.
        self._scaling = scaling_options(config)
        self._executor = build_parsl_executor(config, workers)
        configured_dir = run_dir or config.engine.get("run_dir")
        self._run_dir = Path(configured_dir) if configured_dir else None
        self._owns_run_dir = configured_dir is None
        self._htex: HighThroughputExecutor | None = None
        self._poller: JobStatusPoller | None = None
        self._context: EngineContext | None = None
        self._max_retries = 0
        self._lifecycle = Lifecycle("the parsl engine")
        self._lock = threading.Lock()  # guards the lifecycle, counters, losses, HTEX submission
        self._outstanding = 0
        self._losses: dict[str, list[str]] = {}
        self._done: queue.SimpleQueue[tuple[ClaimedTask, Future[Any] | None, TaskResult | None]]
        self._done = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._view_cache: tuple[float, tuple[int, int, int]] = (-STATUS_MAX_AGE_S, (0, 0, 0))

    # -- Engine interface ---------------------------------------------------------------------

    def start(self, context: EngineContext) -> None:
        with self._lock:
            self._lifecycle.begin_start()
        from parsl.jobs.job_status_poller import JobStatusPoller

        self._context = context
        configured = self.config.max_retries_on_system_failure
        self._max_retries = (
            context.max_retries_on_system_failure if configured is None else configured
        )
        htex = self._executor
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix="globus-compute-parsl-"))
        self._run_dir.mkdir(parents=True, exist_ok=True)
        htex.run_dir = str(self._run_dir)
        htex.run_id = str(uuid.uuid4())
        script_dir = self._run_dir / "submit_scripts"
        script_dir.mkdir(exist_ok=True)
        provider: Any = htex.provider
        provider.script_dir = str(script_dir)
        put_parsl_scripts_on_path()
        htex.start()  # type: ignore[no-untyped-call]
        self._htex = htex
        # The poller's first round scales out init_blocks at once; later rounds follow the
        # strategy between min_blocks and max_blocks.
        self._poller = JobStatusPoller(**self._scaling)
        self._poller.add_executors([htex])
        self._thread = threading.Thread(target=self._results_loop, name="parsl-engine-results")
        self._thread.start()
        with self._lock:
            self._lifecycle.started()
        log.info("parsl engine started: %s, run dir %s", type(htex).__name__, self._run_dir)

    def submit(self, tasks: list[ClaimedTask]) -> None:
        with self._lock:
            self._lifecycle.require_running()
            self._outstanding += len(tasks)
        for task in tasks:
            refusal = refusal_text(task)  # before HTEX: such a task would only fail there
            if refusal is None:
                refusal = self._send(task)
            if refusal is not None:
                self._done.put((task, None, self._failed(task, refusal)))

    def status(self) -> WorkerStatus:
        """Parsl's view: connected workers, tasks held by managers, blocks."""
        with self._lock:
            outstanding = self._outstanding
            htex = self._htex if self._lifecycle.running else None
        if htex is None:
            return {
                "total_workers": 0,
                "idle_workers": 0,
                "pending_tasks": outstanding,
                "outstanding_tasks": outstanding,
                "managers": 0,
            }
        total, busy, blocks = self._manager_view(htex)
        return {
            "total_workers": total,
            "idle_workers": max(0, total - busy),
            "pending_tasks": max(0, htex.outstanding() - busy),
            "outstanding_tasks": outstanding,
            "managers": blocks,
        }

    def worker_slots(self) -> int:
        """Connected workers; before any block has connected (``init_blocks: 0``, or idle
        blocks scaled in), the workers of one block the provider starts on demand: only claimed
        tasks make Parsl's strategy submit a block."""
        with self._lock:
            htex = self._htex if self._lifecycle.running else None
        if htex is None:
            return 0
        return self._manager_view(htex)[0] or self._on_demand_workers(htex)

    def _manager_view(self, htex: HighThroughputExecutor) -> tuple[int, int, int]:
        """(connected workers, tasks at managers, blocks), at most STATUS_MAX_AGE_S old.

        The agent asks for status before every claim; each fresh answer is a round trip
        through the interchange, which is busy dispatching the very tasks being claimed.
        """
        now = time.monotonic()
        cached_at, view = self._view_cache
        if now - cached_at < STATUS_MAX_AGE_S:
            return view
        total = busy = 0
        blocks: set[str] = set()
        proc = htex.interchange_proc
        if proc is not None and proc.poll() is None:
            try:
                managers = htex.connected_managers()
            except Exception:
                log.exception("could not ask the HTEX interchange for its managers")
                managers = []
            for manager in managers:
                if manager.get("active", True):
                    total += int(manager["worker_count"])
                busy += int(manager["tasks"])
                blocks.add(str(manager["block_id"]))
        view = (total, busy, len(blocks))
        self._view_cache = (now, view)
        return view

    @staticmethod
    def _on_demand_workers(htex: HighThroughputExecutor) -> int:
        provider: Any = htex.provider
        if provider is None or int(getattr(provider, "max_blocks", 0)) < 1:
            return 0
        per_node = max(1, int(htex.workers_per_node))
        return per_node * max(1, int(getattr(provider, "nodes_per_block", 1)))

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._lifecycle.stop() in (State.NEW, State.STOPPED):
                return
        self._stop.set()
        if self._poller is not None:
            try:
                self._poller.close(timeout)  # cancels every block, which stops its workers
            except Exception:
                log.exception("scaling in the Parsl blocks failed")
        if self._htex is not None:
            try:
                self._htex.shutdown(timeout)
            except Exception:
                log.exception("HTEX shutdown failed")
        if self._thread is not None:
            self._thread.join(timeout)
        if self._owns_run_dir and self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)

    # -- submission ---------------------------------------------------------------------------

    def _send(self, task: ClaimedTask) -> str | None:
        """Hand ``task`` to HTEX; the failure text if HTEX refused it."""
        assert self._htex is not None and self._context is not None
        spec = dict(task.get("resource_specification") or {})
        try:
            # MPIExecutor fills in derived keys (num_ranks from num_nodes x ranks_per_node),
            # so the checked copy is the one sent.
            self._htex.validate_resource_spec(spec)
        except Exception as exc:
            return (
                f"Task {task['task_id']} was refused: its resource_specification "
                f"{task.get('resource_specification') or {}!r} is not supported by this endpoint's "
                f"Parsl {type(self._htex).__name__}.\n{_exception_line(exc)}"
            )
        entry_kwargs = {
            "endpoint_id": self._context.endpoint_id,
            "allowed_serializers": self._context.allowed_serializers,
        }
        context: dict[str, Any] = {"task_executor": {"f": WORKER_ENTRY, "k": entry_kwargs}}
        if spec:
            context["resource_spec"] = spec
        try:
            with self._lock:  # HTEX's outgoing ZMQ socket is not thread-safe
                future = self._htex.submit_payload(context, pickle.dumps(task))
        except Exception as exc:
            return lost_task_text([_exception_line(exc)])
        future.add_done_callback(lambda fut: self._done.put((task, fut, None)))
        return None

    # -- results ------------------------------------------------------------------------------

    def _results_loop(self) -> None:
        while not self._stop.is_set():
            try:
                items = [self._done.get(timeout=IDLE_WAIT_S)]
            except queue.Empty:
                continue
            # HTEX hands results over one at a time; lingering briefly gathers a burst into
            # one batch (one sink call, one results request) at a cost of at most LINGER_S.
            linger_until = time.monotonic() + LINGER_S
            while len(items) < MAX_RESULT_BATCH:
                remaining = linger_until - time.monotonic()
                try:
                    items.append(
                        self._done.get(timeout=remaining)
                        if remaining > 0
                        else self._done.get_nowait()
                    )
                except queue.Empty:
                    break
            batch: list[TaskResult] = []
            for task, future, ready in items:
                try:
                    result = ready if future is None else self._settle(task, future)
                except Exception as exc:
                    log.exception("could not settle task %s", task.get("task_id"))
                    result = self._failed(task, lost_task_text([_exception_line(exc)]))
                if result is not None:
                    batch.append(result)
            if batch:
                self._deliver(batch)

    def _settle(self, task: ClaimedTask, future: Future[Any]) -> TaskResult | None:
        """The result of a finished HTEX future, or None if the task was sent again."""
        exc = future.exception()
        if exc is None:
            result = future.result()
            if isinstance(result, dict) and result.get("task_id") == task["task_id"]:
                with self._lock:
                    self._losses.pop(task["task_id"], None)
                return result  # type: ignore[return-value]
            exc = TypeError(f"the HTEX worker returned a {type(result).__name__}, not a result")
        # run_in_htex_worker never raises for the task itself, so any exception here means the
        # worker, its manager or the executor failed: Parsl's WorkerLost, ManagerLost, ...
        with self._lock:
            losses = self._losses.setdefault(task["task_id"], [])
            losses.append(_exception_line(exc))
            retry = len(losses) < attempts_allowed(task, self._max_retries)
        if retry and not self._stop.is_set():
            log.warning("task %s lost (%s); running it again", task["task_id"], losses[-1])
            refusal = self._send(task)
            if refusal is None:
                return None
            losses.append(refusal)
        with self._lock:
            self._losses.pop(task["task_id"], None)
        return self._failed(task, lost_task_text(losses))

    def _deliver(self, batch: list[TaskResult]) -> None:
        assert self._context is not None
        with self._lock:
            self._outstanding -= len(batch)
        try:
            self._context.result_sink(batch)
        except Exception:
            log.exception("the result sink failed on a batch of %d results", len(batch))

    def _failed(self, task: ClaimedTask, text: str) -> TaskResult:
        endpoint_id = self._context.endpoint_id if self._context else ""
        return failed_result(task["task_id"], text, {"endpoint_id": endpoint_id})


def put_parsl_scripts_on_path() -> None:
    """Make HTEX's commands (``interchange.py``, ``process_worker_pool.py``) findable.

    HTEX starts them by name from ``PATH``, which holds them only while their virtual
    environment is activated. When they are not found there but sit next to this Python (an
    agent started as ``/path/to/venv/bin/python -m globus_compute.endpoint``), that directory is
    put first on this process's ``PATH``, which the interchange and locally started worker
    pools inherit.
    """
    bin_dir = os.path.dirname(sys.executable)
    if shutil.which(PARSL_SCRIPTS[0]) is not None:
        return
    if all(os.path.exists(os.path.join(bin_dir, script)) for script in PARSL_SCRIPTS):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
        log.info("Parsl's scripts are not on PATH; using those in %s", bin_dir)


def _exception_line(exc: BaseException) -> str:
    """``module.Class: message``, as a traceback's last line names it (Parsl's WorkerLost)."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
