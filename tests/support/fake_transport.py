"""An in-memory Compute service for the endpoint agent, behind its ``AgentTransport`` seam.

``Agent(..., transport=service.transport)`` makes every agent thread talk to one
:class:`FakeAgentService` through its own :class:`FakeTransport`, which keeps the promises of
``globus_compute.endpoint.transport``: a refusal raises ``ServiceRefused`` at once; while the
service is unreachable a call "retries" until its abort event is set, then raises
``AbortedError``. The service records what the agent did (registrations, claim sizes,
heartbeats, result posts) and lets a test refuse results or heartbeats, hand out tasks, ask the
agent to stop, and wait for any of it with a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from globus_compute.endpoint.transport import AbortedError
from globus_compute.errors import ServiceRefused
from globus_compute.protocol.agent import (
    ClaimedTask,
    ClaimResponse,
    HeartbeatResponse,
    ResultsResponse,
    TaskResult,
    WorkerStatus,
)
from globus_compute.serialize import ComputeSerializer

ENDPOINT_ID = "66666666-6666-6666-6666-666666666666"

_SER = ComputeSerializer()
#: How often a call to an unreachable service re-checks its abort event (its "retry").
_RETRY_POLL_S = 0.01


def claimed_task(task_id: str, fn: Callable[..., Any], *args: Any, attempt: int = 1) -> ClaimedTask:
    """A task as the service hands it out: ``fn(*args)`` in the reference 3-buffer layout."""
    buffer = _SER.pack_buffers([_SER.serialize(fn)]) + _SER.pack_buffers(
        [_SER.serialize(args), _SER.serialize({})]
    )
    return {
        "task_id": task_id,
        "function_id": "f",
        "task_buffer": buffer,
        "result_serializers": None,
        "resource_specification": None,
        "user_endpoint_config": None,
        "attempt": attempt,
    }


class FakeAgentService:
    """The service side: queued tasks, accepted results, and the knobs a test turns.

    Attributes:
        lease_s: Answered in heartbeats and claims.
        stop_requested: Answered as ``stop`` in heartbeats (``Client.stop_endpoint``).
        refuse_results: Given each results post, returns an HTTP status to refuse it with, or
            None to accept it.
        refuse_heartbeat: An HTTP status every heartbeat is refused with, or None.
        unreachable: While set, every call fails transiently (and so waits for its abort).
        resolved: Task ids a heartbeat that holds them is told to ``drop``.
    """

    def __init__(self, lease_s: float = 3.0) -> None:
        self.lease_s = lease_s
        self.stop_requested = False
        self.refuse_results: Callable[[list[TaskResult]], int | None] = lambda batch: None
        self.refuse_heartbeat: int | None = None
        self.unreachable = threading.Event()
        self.registrations: list[dict[str, Any]] = []
        self.claim_sizes: list[int] = []
        self.heartbeats: list[tuple[WorkerStatus, list[str] | None]] = []
        #: The ``phase`` of each heartbeat, in order (None while running).
        self.phases: list[str | None] = []
        #: Task ids the service "already resolved": a heartbeat holding one answers it in drop.
        self.resolved: set[str] = set()
        self.accepted_posts: list[list[TaskResult]] = []
        self.refused_posts: list[tuple[int, list[TaskResult]]] = []
        self.results: dict[str, TaskResult] = {}
        self.transports: list[FakeTransport] = []
        self._queued: list[ClaimedTask] = []
        self._changed = threading.Condition()

    # -- what a test does -------------------------------------------------------------------

    def transport(self, abort: threading.Event) -> FakeTransport:
        """The agent's ``TransportFactory``: one transport per agent thread."""
        transport = FakeTransport(self, abort)
        with self._changed:
            self.transports.append(transport)
        return transport

    def add_tasks(self, tasks: list[ClaimedTask]) -> None:
        with self._changed:
            self._queued.extend(tasks)
            self._changed.notify_all()

    @property
    def queued(self) -> int:
        with self._changed:
            return len(self._queued)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Block until ``condition()`` holds (checked whenever the service changes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out waiting for {what}"
                self._changed.wait(min(remaining, 0.1))

    # -- what the agent's transports call ---------------------------------------------------

    def _register(self, name: str, metadata: dict[str, Any], display_name: str | None) -> str:
        with self._changed:
            self.registrations.append(
                {"name": name, "metadata": metadata, "display_name": display_name}
            )
            self._changed.notify_all()
        return ENDPOINT_ID

    def _heartbeat(
        self, status: WorkerStatus, held: list[str] | None, phase: str | None
    ) -> HeartbeatResponse:
        with self._changed:
            self.heartbeats.append((status, held))
            self.phases.append(phase)
            self._changed.notify_all()
            if self.refuse_heartbeat is not None:
                raise ServiceRefused(self.refuse_heartbeat, '{"code": "UNAUTHORIZED"}')
            drop = [t for t in held or () if t in self.resolved]
            return {"lease_s": self.lease_s, "stop": self.stop_requested, "drop": drop}

    def _claim(self, max_tasks: int, wait_s: float) -> ClaimResponse:
        with self._changed:
            self.claim_sizes.append(max_tasks)
            self._changed.notify_all()
            self._changed.wait_for(lambda: bool(self._queued), timeout=wait_s)
            tasks, self._queued = self._queued[:max_tasks], self._queued[max_tasks:]
            self._changed.notify_all()
            return {"tasks": tasks, "lease_s": self.lease_s}

    def _post_results(self, results: list[TaskResult]) -> ResultsResponse:
        with self._changed:
            status = self.refuse_results(results)
            if status is not None:
                self.refused_posts.append((status, list(results)))
                self._changed.notify_all()
                raise ServiceRefused(status, '{"code": "REFUSED"}')
            self.accepted_posts.append(list(results))
            for result in results:
                self.results[result["task_id"]] = result
            self._changed.notify_all()
            return {"accepted": len(results), "ignored": 0}


class FakeTransport:
    """One agent thread's ``AgentTransport`` to a :class:`FakeAgentService`."""

    def __init__(self, service: FakeAgentService, abort: threading.Event) -> None:
        self.service = service
        self.abort = abort
        self.closed = False

    def register(self, name: str, metadata: dict[str, Any], display_name: str | None = None) -> str:
        self._reach()
        return self.service._register(name, metadata, display_name)

    def heartbeat(
        self,
        endpoint_id: str,
        status: WorkerStatus,
        held: list[str] | None = None,
        phase: str | None = None,
    ) -> HeartbeatResponse:
        assert endpoint_id == ENDPOINT_ID
        self._reach()
        return self.service._heartbeat(status, held, phase)

    def claim(self, endpoint_id: str, max_tasks: int, wait_s: float) -> ClaimResponse:
        assert endpoint_id == ENDPOINT_ID
        self._reach()
        return self.service._claim(max_tasks, wait_s)

    def post_results(self, endpoint_id: str, results: list[TaskResult]) -> ResultsResponse:
        assert endpoint_id == ENDPOINT_ID
        self._reach()
        return self.service._post_results(results)

    def close(self) -> None:
        self.closed = True

    def _reach(self) -> None:
        """Fail like the HTTP transport: aborted, or retrying until the service is back."""
        assert not self.closed, "a closed transport was used"
        while True:
            if self.abort.is_set():
                raise AbortedError("aborted")
            if not self.service.unreachable.is_set():
                return
            self.abort.wait(_RETRY_POLL_S)
