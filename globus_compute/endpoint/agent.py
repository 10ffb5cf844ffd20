"""The endpoint agent: registers, then claims tasks, runs them on an engine, reports results.

::

    [endpoint-heartbeat]  every heartbeat_s: POST heartbeat(engine.status())  -> lease, stop?
    [endpoint-claimer]    while the engine has room: long-poll POST claim -> engine.submit(tasks)
    engine threads  ───── result batches ──► _on_results ──► pending results
    [endpoint-reporter]   POST results: at once when idle, accumulated while a POST is in flight

How much to claim: at most ``max(CLAIM_PER_WORKER * workers, throughput * CLAIM_HORIZON_S)``
tasks outstanding, so slow tasks are not hoarded from other endpoints (a few per worker) while
no-op floods still travel in large batches (about a quarter second of measured work).

Stopping (SIGTERM/SIGINT, ``stop()``, or a heartbeat answering ``stop: true``) is graceful and
the documented choice is *finish*: claiming stops, tasks already claimed run to completion for
up to ``drain_timeout_s``, every result is reported, then the engine and the heartbeat stop.
Tasks still running at the deadline are abandoned; their leases expire at the service, which
re-queues or fails them according to ``max_retries_on_system_failure``.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
import time
from typing import Any

from globus_compute.protocol.agent import MAX_WAIT_S, TaskResult
from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.endpoint.transport import AbortedError, ServiceAPI, ServiceError
from globus_compute.version import REFERENCE_SDK_VERSION, __version__

log = logging.getLogger(__name__)

#: Tasks each worker may have claimed ahead however slow they are.
CLAIM_PER_WORKER = 4
#: Seconds of measured throughput the agent may hold claimed, for floods of short tasks.
CLAIM_HORIZON_S = 0.25
#: Upper bounds on one results POST: the service refuses bodies over 10 MB.
REPORT_MAX_RESULTS, REPORT_MAX_CHARS = 5000, 4 * 1024 * 1024
#: How long a stopping agent keeps trying to deliver results to an unreachable service.
REPORT_FLUSH_TIMEOUT_S = 10.0
#: How often idle threads re-check their stop event.
IDLE_WAIT_S = 0.5


class Agent:
    """One endpoint: a registration plus three named threads around an engine.

    Args:
        service_url: The Compute service's base URL.
        token: The endpoint owner's bearer token.
        name: Endpoint name; the same name and owner always get the same endpoint id.
        engine: Runs the tasks; started and shut down by the agent.
        heartbeat_s: Seconds between heartbeats (shortened to a third of the service's lease).
        claim_batch: Most tasks asked for in one claim.
        claim_wait_s: Long-poll duration of an idle claim; bounds how long a stop waits for it.
        max_retries_on_system_failure: Extra runs of a task lost with a worker or the agent;
            sent to the service in the registration metadata and given to the engine.
        drain_timeout_s: How long a graceful stop lets claimed tasks finish.
        display_name: Shown instead of ``name`` in endpoint listings (from a config file).
    """

    def __init__(
        self,
        service_url: str,
        token: str,
        name: str,
        engine: Engine,
        *,
        heartbeat_s: float = 5.0,
        claim_batch: int = 1000,
        claim_wait_s: float = 2.0,
        max_retries_on_system_failure: int = 0,
        drain_timeout_s: float = 30.0,
        display_name: str | None = None,
    ) -> None:
        if max_retries_on_system_failure < 0:
            raise ValueError("max_retries_on_system_failure must be 0 or more")
        self.service_url = service_url
        self.name = name
        self.display_name = display_name
        self.engine = engine
        self.heartbeat_s = heartbeat_s
        self.claim_batch = max(1, claim_batch)
        self.claim_wait_s = min(max(0.0, claim_wait_s), MAX_WAIT_S)
        self.max_retries_on_system_failure = max_retries_on_system_failure
        self.drain_timeout_s = drain_timeout_s
        self.endpoint_id: str | None = None
        self._token = token
        self._stop_requested = threading.Event()
        self._claimer_stop = threading.Event()
        self._reporter_stop = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._abort = threading.Event()  # ends retries of in-flight calls
        self._force = threading.Event()  # a second signal: do not wait for tasks
        self._results_lock = threading.Lock()
        self._results_ready = threading.Condition(self._results_lock)
        self._unreported: list[TaskResult] = []
        #: Claimed tasks whose results the service has not yet accepted; heartbeats renew the
        #: lease of exactly these (guarded by the results lock).
        self._held: set[str] = set()
        self._capacity_freed = threading.Event()
        self._completed = 0
        self._throughput = 0.0
        self._threads: dict[str, threading.Thread] = {}
        self._lifecycle_lock = threading.Lock()
        self._started = False
        self._finished = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Register, start the engine and the agent threads; returns the endpoint id.

        Raises:
            ServiceError: If the service refuses the registration (bad token, bad name).
            RuntimeError: If the agent was already started.
        """
        with self._lifecycle_lock:
            if self._started:
                raise RuntimeError("an Agent can be started once")
            self._started = True
        api = ServiceAPI(self.service_url, self._token, self._stop_requested)
        try:
            self.endpoint_id = api.register(self.name, self._metadata(), self.display_name)
            context = EngineContext(
                self.endpoint_id, self._on_results, self.max_retries_on_system_failure
            )
            self.engine.start(context)
            # Online before the id is announced: whoever reads the id next may ask the status.
            api.heartbeat(self.endpoint_id, self.engine.status(), held=[])
        finally:
            api.close()
        for target, name, stop in (
            (self._heartbeat_loop, "endpoint-heartbeat", self._heartbeat_stop),
            (self._claim_loop, "endpoint-claimer", self._claimer_stop),
            (self._report_loop, "endpoint-reporter", self._reporter_stop),
        ):
            thread = threading.Thread(target=target, args=(stop,), name=name)
            thread.start()
            self._threads[name] = thread
        log.info(
            "endpoint %s (%s) running with the %s engine",
            self.name,
            self.endpoint_id,
            self.engine.name,
        )
        return self.endpoint_id

    def stop(self, force: bool = False) -> None:
        """Ask for a stop; returns at once (safe in a signal handler).

        Args:
            force: Skip waiting for claimed tasks and give up on unreachable services; their
                leases expire at the service, which re-queues or fails them.
        """
        if force:
            self._force.set()
            self._abort.set()
        self._stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested; True if it was."""
        return self._stop_requested.wait(timeout)

    def run(self) -> None:
        """Start (if needed), serve until a stop is requested, then shut down gracefully."""
        if not self._started:
            self.start()
        while not self._stop_requested.wait(IDLE_WAIT_S):
            if not all(t.is_alive() for t in self._threads.values()):
                log.error("an agent thread died; stopping")
                break
        self.shutdown()

    def shutdown(self) -> None:
        """Stop claiming, let claimed tasks finish, report everything, stop; idempotent."""
        with self._lifecycle_lock:
            if self._finished or not self._started:
                return
            self._finished = True
        self._stop_requested.set()
        threads = self._threads
        self._claimer_stop.set()
        threads["endpoint-claimer"].join(self.claim_wait_s + 35.0)
        self._drain(time.monotonic() + self.drain_timeout_s)
        self.engine.shutdown()
        self._reporter_stop.set()
        with self._results_ready:
            self._results_ready.notify_all()
        deadline = time.monotonic() + REPORT_FLUSH_TIMEOUT_S
        reporter = threads["endpoint-reporter"]
        while reporter.is_alive() and time.monotonic() < deadline and not self._force.is_set():
            reporter.join(0.05)
        self._abort.set()  # no more waiting on an unreachable service
        reporter.join(IDLE_WAIT_S)
        self._heartbeat_stop.set()
        for thread in threads.values():
            thread.join(35.0)
        log.info("endpoint %s stopped", self.endpoint_id)

    def _drain(self, deadline: float) -> None:
        while self.engine.status()["outstanding_tasks"] > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._force.is_set():
                log.warning("stopping with tasks unfinished; the service will reclaim them")
                return
            self._capacity_freed.clear()
            if self.engine.status()["outstanding_tasks"] > 0:
                self._capacity_freed.wait(min(remaining, IDLE_WAIT_S))

    def _metadata(self) -> dict[str, Any]:
        return {
            "max_retries_on_system_failure": self.max_retries_on_system_failure,
            "engine": self.engine.name,
            "workers": self.engine.status()["total_workers"],
            "hostname": socket.gethostname(),
            "os": platform.system(),
            "python_version": platform.python_version(),
            "globus_compute_version": __version__,
            "globus_compute_sdk_version": REFERENCE_SDK_VERSION,
            "pid": os.getpid(),
        }

    # --- results from the engine ------------------------------------------------------------

    def _on_results(self, batch: list[TaskResult]) -> None:
        """The engine's result sink: queue for the reporter, wake the claimer."""
        with self._results_ready:
            self._unreported.extend(batch)
            self._completed += len(batch)
            self._results_ready.notify()
        self._capacity_freed.set()

    # --- threads ----------------------------------------------------------------------------

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        api = ServiceAPI(self.service_url, self._token, self._abort)
        interval = self.heartbeat_s
        try:
            while not stop.is_set():
                with self._results_lock:
                    held = list(self._held)
                try:
                    reply = api.heartbeat(self._eid, self.engine.status(), held)
                except ServiceError as exc:
                    log.error("heartbeat refused (%s); stopping the endpoint", exc)
                    self.stop()
                    return
                except AbortedError:
                    return
                except Exception:
                    log.exception("heartbeat failed; retrying")
                else:
                    interval = min(self.heartbeat_s, max(0.05, float(reply["lease_s"]) / 3))
                    if reply.get("stop"):
                        log.info("the service asked endpoint %s to stop", self.endpoint_id)
                        self.stop()
                stop.wait(interval)
        finally:
            api.close()

    def _claim_loop(self, stop: threading.Event) -> None:
        api = ServiceAPI(self.service_url, self._token, stop)
        last_count, last_t = 0, time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - last_t >= 0.1:
                    rate = (self._completed - last_count) / (now - last_t)
                    self._throughput = 0.5 * self._throughput + 0.5 * rate
                    last_count, last_t = self._completed, now
                spare = self._spare_capacity()
                if spare <= 0:
                    self._capacity_freed.clear()
                    if self._spare_capacity() <= 0:
                        self._capacity_freed.wait(IDLE_WAIT_S)
                    continue
                try:
                    reply = api.claim(self._eid, min(spare, self.claim_batch), self.claim_wait_s)
                except AbortedError:
                    return
                except ServiceError as exc:
                    log.error("claim refused (%s); stopping the endpoint", exc)
                    self.stop()
                    return
                except Exception:
                    log.exception("claim failed; retrying")
                    stop.wait(IDLE_WAIT_S)
                    continue
                if reply["tasks"]:
                    with self._results_lock:
                        self._held.update(task["task_id"] for task in reply["tasks"])
                    self.engine.submit(reply["tasks"])
        finally:
            api.close()

    def _spare_capacity(self) -> int:
        status = self.engine.status()
        limit = max(
            CLAIM_PER_WORKER * self.engine.worker_slots(), int(self._throughput * CLAIM_HORIZON_S)
        )
        spare = limit - status["outstanding_tasks"]
        # While busy, wait for a worthwhile batch rather than claiming one task per request.
        if status["outstanding_tasks"] and spare < limit // 4:
            return 0
        return spare

    def _report_loop(self, stop: threading.Event) -> None:
        api = ServiceAPI(self.service_url, self._token, self._abort)
        try:
            while True:
                with self._results_ready:
                    while not self._unreported and not stop.is_set():
                        self._results_ready.wait(IDLE_WAIT_S)
                    if not self._unreported:
                        return  # stopped with everything reported
                    batch = self._take_report_batch()
                try:
                    self._report(api, batch)
                    with self._results_lock:
                        self._held.difference_update(result["task_id"] for result in batch)
                except AbortedError:
                    with self._results_lock:
                        lost = len(batch) + len(self._unreported)
                    log.error("stopped with %d results unreported", lost)
                    return
        finally:
            api.close()

    def _take_report_batch(self) -> list[TaskResult]:
        """Everything accumulated, up to the per-request bounds (results lock held)."""
        size, count = 0, 0
        for result in self._unreported:
            size += len(result.get("result", "")) + len(result.get("exception", ""))
            count += 1
            if count >= REPORT_MAX_RESULTS or size >= REPORT_MAX_CHARS:
                break
        batch, self._unreported = self._unreported[:count], self._unreported[count:]
        return batch

    def _report(self, api: ServiceAPI, batch: list[TaskResult]) -> None:
        """POST one batch; on 413 split it, on another refusal fail the results it carried."""
        try:
            api.post_results(self._eid, batch)
        except ServiceError as exc:
            if exc.http_status == 413 and len(batch) > 1:
                half = len(batch) // 2
                self._report(api, batch[:half])
                self._report(api, batch[half:])
            elif exc.http_status == 413 or exc.http_status == 400:
                log.error(
                    "the service refused %d results (%s); reporting failures", len(batch), exc
                )
                api.post_results(self._eid, [_refused(r, exc) for r in batch])
            else:
                log.error("the service refused %d results (%s); dropped", len(batch), exc)

    @property
    def _eid(self) -> str:
        assert self.endpoint_id is not None
        return self.endpoint_id


def _refused(result: TaskResult, exc: ServiceError) -> TaskResult:
    """A small failed result replacing one the service would not accept."""
    return {
        "task_id": result["task_id"],
        "status": "failed",
        "exception": f"The endpoint could not report this task's result; the service said: {exc}",
        "completion_t": result.get("completion_t", str(time.time())),
        "details": result.get("details", {}),
    }
