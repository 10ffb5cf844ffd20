"""The endpoint agent: registers, then claims tasks, runs them on an engine, reports results.

::

    [endpoint-heartbeat]  every heartbeat_s: heartbeat(engine.status(), held) -> lease, stop?,
                          drop (held tasks the service already resolved); the goodbye at the end
    [endpoint-claimer]    while the claim policy allows: long-poll claim -> engine.submit(tasks)
    engine threads  ───── result batches ──► _on_results ──► pending results
    [endpoint-reporter]   post_results: at once when idle, accumulated while a POST is in flight

The service is reached through an :class:`~globus_compute.endpoint.transport.AgentTransport`,
one per thread (HTTP by default; tests inject an in-memory one). How much to claim is the
:class:`~globus_compute.endpoint.claim_policy.ClaimPolicy`'s decision: a few tasks per worker
slot, or about a quarter second of measured throughput for floods of short tasks.

Who owns a task. The first heartbeat of an agent process says ``phase: "starting"``: the
service then releases whatever an earlier process of this endpoint held (it is gone). A
registration alone (an owner's update) takes nothing from a running agent. Each heartbeat
renews the leases of the tasks the agent holds; its answer lists those the service has already
resolved (it failed them ``EndpointLost`` while the agent was out of touch, frozen or cut off
past the lease), and the agent drops them before they start. Until a heartbeat has been
answered within the last lease, the agent's leases are in doubt: the engine starts no new task
and the claimer claims none (``EngineContext.leases_current``).

Stopping (SIGTERM/SIGINT, ``stop()``, or a heartbeat answering ``stop: true``) is graceful and
the documented choice is *finish*: claiming stops, tasks already claimed run to completion for
up to ``drain_timeout_s``, every result is reported (for up to ``report_flush_timeout_s`` if the
service is unreachable), then the engine stops and the agent says goodbye (``phase:
"stopping"``, at most ``GOODBYE_TIMEOUT_S``): the endpoint is offline at once, and the tasks
it still held (abandoned at the drain deadline, or by ``stop(force=True)``) are released at
once, re-queued or failed according to ``max_retries_on_system_failure``. Three signals carry a
stop through the threads:

- ``stopping``: a stop was asked for; the claimer ends (its claim in flight gives up retrying);
- ``engine stopped``: no result will come any more; the reporter sends what is left and ends;
- ``disconnect``: nothing more will be sent (all reported, or we give up: ``stop(force=True)``,
  the flush deadline); every retry ends and the heartbeat thread says goodbye and stops.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import socket
import threading
import time
from typing import Any

from globus_compute.endpoint.claim_policy import ClaimPolicy
from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.endpoint.lifecycle import Lifecycle, State
from globus_compute.endpoint.transport import (
    REQUEST_TIMEOUT_S,
    AbortedError,
    AgentTransport,
    HTTPTransport,
    TransportFactory,
)
from globus_compute.errors import ServiceRefused
from globus_compute.protocol.agent import (
    MAX_WAIT_S,
    PHASE_STARTING,
    PHASE_STOPPING,
    ClaimedTask,
    TaskResult,
)
from globus_compute.protocol.results import failed_result
from globus_compute.version import REFERENCE_SDK_VERSION, __version__

log = logging.getLogger(__name__)

#: Upper bounds on one results POST: the service refuses bodies over 10 MB.
REPORT_MAX_RESULTS, REPORT_MAX_CHARS = 5000, 4 * 1024 * 1024
#: How long a stopping agent keeps trying to deliver results to an unreachable service.
REPORT_FLUSH_TIMEOUT_S = 10.0
#: How often idle threads re-check what they wait for, as a backstop to being woken.
IDLE_WAIT_S = 0.5
#: Grace on top of the longest call a thread may be in when it is told to stop.
JOIN_SLACK_S = 5.0
#: How long a stopping agent tries to say goodbye to the service.
GOODBYE_TIMEOUT_S = 3.0
#: How often a thread re-checks whether the agent's leases are current again.
LEASE_POLL_S = 0.05
#: How long the engine may take to stop once no task is left worth waiting for.
ENGINE_STOP_S = 5.0
#: HTTP statuses of a results post that may be caused by one result alone: the batch is split
#: until the culprit is found, and only its task fails.
_PER_RESULT_REFUSALS = frozenset({400, 413, 422})


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
        report_flush_timeout_s: How long a stop keeps trying to deliver the last results.
        transport: Builds each thread's transport from its abort event; default: HTTP to
            ``service_url`` with ``token``.
        claim_policy: Decides how many tasks to claim; default: a :class:`ClaimPolicy`.
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
        report_flush_timeout_s: float = REPORT_FLUSH_TIMEOUT_S,
        transport: TransportFactory | None = None,
        claim_policy: ClaimPolicy | None = None,
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
        self.report_flush_timeout_s = report_flush_timeout_s
        self.endpoint_id: str | None = None
        self._transport: TransportFactory = transport or functools.partial(
            HTTPTransport, service_url, token
        )
        self._claim_policy = claim_policy or ClaimPolicy()
        # The three stop signals (see the module docstring), and one wake-up.
        self._stopping = threading.Event()
        self._engine_stopped = threading.Event()
        self._disconnect = threading.Event()
        self._capacity_freed = threading.Event()  # a result arrived, or a stop was asked for
        self._hang_up = threading.Event()  # the goodbye had its chance: every call ends
        self._results_lock = threading.Lock()
        self._results_ready = threading.Condition(self._results_lock)
        self._unreported: list[TaskResult] = []
        #: Claimed tasks whose results the service has not yet accepted; heartbeats renew the
        #: lease of exactly these (guarded by the results lock).
        self._held: set[str] = set()
        #: Monotonic time until which the leases of the held tasks are known to run (the send
        #: time of the last answered heartbeat plus the lease); read by the engine and claimer.
        self._leases_valid_until = 0.0
        self._heartbeat: threading.Thread | None = None
        self._claimer: threading.Thread | None = None
        self._reporter: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()
        self._lifecycle = Lifecycle("the agent")

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Register, start the engine and the agent threads; returns the endpoint id.

        If it raises, :meth:`shutdown` stops whatever it had started.

        Raises:
            ServiceRefused: If the service refuses the registration (bad token, bad name).
            AbortedError: If a stop was asked for before the service answered.
            RuntimeError: If the agent was already started.
        """
        with self._lifecycle_lock:
            self._lifecycle.begin_start()
        api = self._transport(self._stopping)
        try:
            self.endpoint_id = api.register(self.name, self._metadata(), self.display_name)
            context = EngineContext(
                self.endpoint_id,
                self._on_results,
                self.max_retries_on_system_failure,
                leases_current=self._leases_current,
            )
            self.engine.start(context)
            # Online before the id is announced: whoever reads the id next may ask the status.
            # "starting": whatever an earlier process of this endpoint held is released now.
            sent_at = time.monotonic()
            reply = api.heartbeat(
                self.endpoint_id, self.engine.status(), held=[], phase=PHASE_STARTING
            )
            self._leases_valid_until = sent_at + float(reply["lease_s"])
        finally:
            api.close()
        with self._lifecycle_lock:
            self._lifecycle.started()  # raises if a shutdown came first; it stopped the engine
            self._heartbeat = self._start_thread(self._heartbeat_loop, "endpoint-heartbeat")
            self._claimer = self._start_thread(self._claim_loop, "endpoint-claimer")
            self._reporter = self._start_thread(self._report_loop, "endpoint-reporter")
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
            force: Skip waiting for claimed tasks and give up on unreachable services; the
                goodbye hands the unfinished tasks back (or, if the service cannot be reached,
                their leases expire), and the service re-queues or fails them.
        """
        if force:
            self._disconnect.set()
        self._stopping.set()
        self._capacity_freed.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested; True if it was."""
        return self._stopping.wait(timeout)

    def run(self) -> None:
        """Start (if needed), serve until a stop is requested, then shut down gracefully."""
        if self._lifecycle.state is State.NEW:
            self.start()
        while not self._stopping.wait(IDLE_WAIT_S):
            if not all(thread.is_alive() for thread in self._threads()):
                log.error("an agent thread died; stopping")
                break
        self.shutdown()

    def shutdown(self) -> None:
        """Stop claiming, let claimed tasks finish, report everything, say goodbye; idempotent.

        Safe in every state, also after a :meth:`start` that failed halfway.
        """
        with self._lifecycle_lock:
            previous = self._lifecycle.stop()
        if previous is State.STOPPED:
            return
        self.stop()
        if self._claimer is not None:
            self._claimer.join(self._claimer_stop_s)
        drained = previous is State.RUNNING and self._drain(time.monotonic() + self.drain_timeout_s)
        # Tasks abandoned at the deadline are not waited for a second time.
        self.engine.shutdown(ENGINE_STOP_S if drained else 0.0)
        self._engine_stopped.set()
        with self._results_ready:
            self._results_ready.notify_all()
        flush_s = self.report_flush_timeout_s
        if self._reporter is not None and not self._disconnect.wait(flush_s):
            log.warning("results still unreported after %.1f s; giving up", flush_s)
        self._disconnect.set()
        if self._heartbeat is not None:
            self._heartbeat.join(GOODBYE_TIMEOUT_S)  # it says goodbye, then ends
        self._hang_up.set()
        for thread in self._threads():
            thread.join(REQUEST_TIMEOUT_S + JOIN_SLACK_S)
        log.info("endpoint %s stopped", self.endpoint_id)

    @property
    def _claimer_stop_s(self) -> float:
        """How long the claimer may take to see a stop: the long poll in flight, one request."""
        return self.claim_wait_s + REQUEST_TIMEOUT_S + JOIN_SLACK_S

    def _drain(self, deadline: float) -> bool:
        """Wait for claimed tasks to finish, until ``deadline`` or a forced stop.

        Returns:
            True if every claimed task finished.
        """
        while self.engine.status()["outstanding_tasks"] > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._disconnect.is_set():
                log.warning("stopping with tasks unfinished; they are given back to the service")
                return False
            self._capacity_freed.clear()
            if self.engine.status()["outstanding_tasks"] > 0 and not self._disconnect.is_set():
                # Bounded: an engine may lower its count just after its result batch arrived.
                self._capacity_freed.wait(min(remaining, IDLE_WAIT_S))
        return True

    def _threads(self) -> list[threading.Thread]:
        return [t for t in (self._heartbeat, self._claimer, self._reporter) if t is not None]

    @staticmethod
    def _start_thread(target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

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
            self._results_ready.notify()
        self._claim_policy.record_completed(len(batch))
        self._capacity_freed.set()

    # --- threads ----------------------------------------------------------------------------

    def _leases_current(self) -> bool:
        """Whether the service answered a heartbeat within the last lease (see the module
        docstring): if not, the held tasks may no longer be ours, and none may start."""
        return time.monotonic() < self._leases_valid_until

    def _heartbeat_loop(self) -> None:
        api = self._transport(self._hang_up)
        interval = self.heartbeat_s
        try:
            while not self._disconnect.is_set():
                with self._results_lock:
                    held = list(self._held)
                sent_at = time.monotonic()
                try:
                    reply = api.heartbeat(self._eid, self.engine.status(), held)
                except ServiceRefused as exc:
                    log.error("heartbeat refused (%s); stopping the endpoint", exc)
                    self.stop()
                    return
                except AbortedError:
                    return
                except Exception:
                    log.exception("heartbeat failed; retrying")
                else:
                    lease_s = float(reply["lease_s"])
                    interval = min(self.heartbeat_s, max(0.05, lease_s / 3))
                    if reply.get("drop"):
                        self._drop(reply["drop"])
                    # Only now, with the resolved tasks dropped, may held tasks start again.
                    self._leases_valid_until = sent_at + lease_s
                    if reply.get("stop"):
                        log.info("the service asked endpoint %s to stop", self.endpoint_id)
                        self.stop()
                self._disconnect.wait(interval)
            self._say_goodbye(api)
        finally:
            api.close()

    def _say_goodbye(self, api: AgentTransport) -> None:
        """Tell the service this agent stopped, handing back the tasks it still holds."""
        with self._results_lock:
            held = list(self._held)
        try:
            api.heartbeat(self._eid, self.engine.status(), held, phase=PHASE_STOPPING)
        except (AbortedError, ServiceRefused) as exc:
            log.warning("could not say goodbye to the service (%s); its leases will expire", exc)
        except Exception:
            log.exception("could not say goodbye to the service; its leases will expire")
        else:
            if held:
                log.warning("stopped holding %d unfinished task(s); handed back", len(held))

    def _drop(self, task_ids: list[str]) -> None:
        """Forget held tasks the service has already resolved; the engine drops unstarted ones."""
        with self._results_lock:
            self._held.difference_update(task_ids)
        dropped = self.engine.drop(task_ids)
        log.warning(
            "the service resolved %d task(s) this agent held while it was out of touch past "
            "their lease; %d not yet started are dropped",
            len(task_ids),
            dropped,
        )
        self._capacity_freed.set()

    def _claim_loop(self) -> None:
        api = self._transport(self._stopping)
        try:
            while not self._stopping.is_set():
                if not self._leases_current():
                    self._stopping.wait(LEASE_POLL_S)  # out of touch: claim nothing more
                    continue
                wanted = self._claim_size()
                if wanted <= 0:
                    self._capacity_freed.clear()
                    if self._claim_size() <= 0 and not self._stopping.is_set():
                        self._capacity_freed.wait(IDLE_WAIT_S)
                    continue
                try:
                    reply = api.claim(self._eid, min(wanted, self.claim_batch), self.claim_wait_s)
                except AbortedError:
                    return
                except ServiceRefused as exc:
                    log.error("claim refused (%s); stopping the endpoint", exc)
                    self.stop()
                    return
                except Exception:
                    log.exception("claim failed; retrying")
                    self._stopping.wait(IDLE_WAIT_S)
                    continue
                if reply["tasks"]:
                    fresh = self._hold(reply["tasks"])
                    if fresh:
                        self.engine.submit(fresh)
        finally:
            api.close()

    def _hold(self, tasks: list[ClaimedTask]) -> list[ClaimedTask]:
        """Record claimed tasks as held; returns those not held already.

        A task this agent still holds comes back only when the service re-queued it after
        losing touch (and then re-leased it here): the copy the engine has runs, once.
        """
        with self._results_lock:
            fresh = [task for task in tasks if task["task_id"] not in self._held]
            self._held.update(task["task_id"] for task in fresh)
        return fresh

    def _claim_size(self) -> int:
        outstanding = self.engine.status()["outstanding_tasks"]
        return self._claim_policy.claim_size(self.engine.worker_slots(), outstanding)

    def _report_loop(self) -> None:
        api = self._transport(self._disconnect)
        try:
            while True:
                with self._results_ready:
                    while not self._unreported and not self._engine_stopped.is_set():
                        self._results_ready.wait(IDLE_WAIT_S)
                    if not self._unreported:
                        return  # the engine stopped and everything is reported
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
            # Nothing more will be sent: heartbeats would only renew leases of tasks whose
            # results can no longer arrive.
            self._disconnect.set()
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

    def _report(self, api: AgentTransport, batch: list[TaskResult]) -> None:
        """Post one batch; a refusal one result may cause splits it until only that result's
        task fails (with the service's reason); another refusal drops the batch."""
        try:
            api.post_results(self._eid, batch)
        except ServiceRefused as exc:
            if exc.http_status in _PER_RESULT_REFUSALS and len(batch) > 1:
                half = len(batch) // 2
                self._report(api, batch[:half])
                self._report(api, batch[half:])
            elif exc.http_status in _PER_RESULT_REFUSALS:
                log.error("the service refused the result of %s (%s)", batch[0]["task_id"], exc)
                try:
                    api.post_results(self._eid, [_refused(batch[0], self._eid, exc)])
                except ServiceRefused as again:
                    log.error("the failure of %s was refused too (%s)", batch[0]["task_id"], again)
            else:
                log.error("the service refused %d results (%s); dropped", len(batch), exc)

    @property
    def _eid(self) -> str:
        assert self.endpoint_id is not None
        return self.endpoint_id


def _refused(result: TaskResult, endpoint_id: str, exc: ServiceRefused) -> TaskResult:
    """A small failed result replacing one the service would not accept."""
    text = f"The endpoint could not report this task's result; the service said: {exc}"
    return failed_result(
        result["task_id"],
        text,
        {"endpoint_id": endpoint_id},
        completion_t=result.get("completion_t"),
    )
