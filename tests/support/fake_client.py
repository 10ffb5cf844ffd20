"""An in-memory stand-in for ``globus_compute.Client``, shared by the Executor unit tests.

It implements ``globus_compute.executor.client_protocol.ExecutorClient``, the interface the
Executor needs of a client and nothing more (``tox -e mypy`` checks that it does), with the same
signatures and answer shapes as the real Client, and "runs" tasks in-process when they are
submitted (or later, when a test says so). Like the real service it keeps functions and results
serialized, never the objects themselves, so tests can check what the Executor keeps alive.
Tests steer it through plain attributes: ``submit_gate`` holds ``batch_run`` until set,
``submit_errors``/``poll_errors`` make the next calls raise, ``submit_answers`` replaces the next
submit answers, ``auto_finish=False`` keeps tasks pending until ``finish()``, ``max_poll_ids``
makes larger polls fail with a 413, ``max_answer_tasks`` makes a poll answer carry at most that
many tasks and list the rest under ``deferred`` (as our service does when an answer is full),
and ``endpoint_statuses`` is what ``get_endpoint_status`` answers (``status_calls`` counts).

Like the real Client it spends a turn of its ``request_budget`` (if given) on every request,
so Executor tests can watch the budget's pacing without HTTP; each poll answer reports
``answer_bytes`` as ``answer_bytes_per_task`` per finished task and 100 per pending one.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from globus_compute.client.environments import is_loopback_url
from globus_compute.client.request_budget import RequestBudget, spend_turn
from globus_compute.client.task_table import TaskOutcome, TaskOutcomes
from globus_compute.errors import TaskExecutionFailed
from globus_compute.protocol.ids import UuidLike, require_uuid
from globus_compute.protocol.states import TaskState
from globus_compute.serialize import ComputeSerializer, unpack_buffers

if TYPE_CHECKING:
    from globus_compute.executor.client_protocol import ExecutorClient

WAITING = TaskOutcome(TaskState.WAITING_FOR_EP.value, pending=True)


class _Stored(NamedTuple):
    """A result as the service keeps it: serialized."""

    text: str


class FakeBatch:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.tasks: list[tuple[str, str]] = []

    def add_payload(self, function_id: str, payload: str) -> None:
        self.add_payloads(function_id, [payload])

    def add_payloads(self, function_id: str, payloads: Sequence[str]) -> None:
        if not all(isinstance(payload, str) for payload in payloads):
            raise TypeError("payload must be str")
        fid = require_uuid(function_id, "function_id")
        self.tasks.extend((fid, payload) for payload in payloads)

    def __len__(self) -> int:
        return len(self.tasks)


class HTTPError(Exception):
    """Looks like a globus-sdk GlobusAPIError to the Executor (``http_status``, ``headers``)."""

    def __init__(
        self, http_status: int, message: str = "error", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(http_status, message, headers)
        self.http_status = http_status
        self.headers = headers or {}


class FakeClient:
    def __init__(
        self,
        service_url: str = "http://127.0.0.1:8000",
        auto_finish: bool = True,
        *,
        request_budget: RequestBudget | None = None,
        long_poll: bool | None = None,
    ):
        self.service_url = service_url
        self.request_budget = request_budget
        self.long_poll = is_loopback_url(service_url) if long_poll is None else long_poll
        self.max_poll_ids: int | None = None
        self.max_answer_tasks: int | None = None
        self.endpoint_statuses: dict[str, dict[str, Any]] = {}
        self.status_calls: list[str] = []
        self.answer_bytes_per_task = 300
        self.fx_serializer = ComputeSerializer()
        self.auto_finish = auto_finish
        self.functions: dict[str, str] = {}  # function id -> serialized function
        self.registrations: list[str] = []
        self.batches: list[FakeBatch] = []
        self.batch_times: list[float] = []
        self.poll_calls: list[tuple[list[str], float]] = []
        self.submit_gate: threading.Event | None = None
        self.submit_started = threading.Event()
        self.submit_errors: list[BaseException] = []
        self.submit_answers: list[Any] = []
        self.poll_errors: list[BaseException] = []
        self.task_group_id = str(uuid.uuid4())
        self._cv = threading.Condition()
        self._outcomes: dict[str, TaskOutcome] = {}
        self._calls: dict[str, tuple[str, str]] = {}  # task id -> (function id, payload)

    # -- ExecutorClient -----------------------------------------------------------------------

    def register_function(
        self,
        function: Callable[..., Any],
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        group: UuidLike | None = None,
        ha_endpoint_id: UuidLike | None = None,
    ) -> str:
        fid = str(uuid.uuid4())
        self.functions[fid] = self.fx_serializer.serialize(function)
        self.registrations.append(fid)
        return fid

    def register_source_code(
        self,
        source: str,
        function_name: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        group: UuidLike | None = None,
        ha_endpoint_id: UuidLike | None = None,
    ) -> str:
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        return self.register_function(namespace[function_name])

    def create_batch(
        self,
        task_group_id: UuidLike | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        create_websocket_queue: bool = False,
        result_serializers: list[str] | None = None,
    ) -> FakeBatch:
        return FakeBatch(
            task_group_id=task_group_id,
            resource_specification=resource_specification,
            user_endpoint_config=user_endpoint_config,
            create_websocket_queue=create_websocket_queue,
            result_serializers=result_serializers,
        )

    def batch_run(self, endpoint_id: UuidLike, batch: FakeBatch) -> dict[str, Any]:
        spend_turn(self.request_budget)
        self.submit_started.set()
        if self.submit_gate is not None:
            assert self.submit_gate.wait(30), "test never released the submit gate"
        with self._cv:
            self.batches.append(batch)
            self.batch_times.append(time.monotonic())
            if self.submit_errors:
                raise self.submit_errors.pop(0)
            if self.submit_answers:
                return self.submit_answers.pop(0)  # possibly malformed on purpose
            tasks: dict[str, list[str]] = {}
            for function_id, payload in batch.tasks:
                tid = str(uuid.uuid4())
                tasks.setdefault(function_id, []).append(tid)
                self._calls[tid] = (function_id, payload)
                self._outcomes[tid] = WAITING
            tg = batch.options.get("task_group_id") or self.task_group_id
        if self.auto_finish:
            self.finish(*[t for ids in tasks.values() for t in ids])
        return {
            "request_id": "r",
            "task_group_id": str(tg),
            "endpoint_id": str(endpoint_id),
            "tasks": tasks,
        }

    def get_task_outcomes(
        self, task_id_list: Iterable[UuidLike], *, wait: float = 0.0
    ) -> TaskOutcomes:
        ids = [str(t) for t in task_id_list]
        spend_turn(self.request_budget)
        with self._cv:
            self.poll_calls.append((ids, wait))
            if self.poll_errors:
                raise self.poll_errors.pop(0)
            if self.max_poll_ids is not None and len(ids) > self.max_poll_ids:
                raise HTTPError(413, f"{len(ids)} ids: too many")
            deadline = time.monotonic() + wait
            while wait > 0 and all(self._outcomes.get(t, WAITING).pending for t in ids):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            found = {t: self._outcomes[t] for t in ids if t in self._outcomes}
        deferred: list[str] = []
        if self.max_answer_tasks is not None and len(found) > self.max_answer_tasks:
            deferred = list(found)[self.max_answer_tasks :]
            for t in deferred:
                del found[t]
        # As the real Client does, a result is read from its serialized form for each answer.
        answers = TaskOutcomes((t, self._readable(outcome)) for t, outcome in found.items())
        answers.deferred = frozenset(deferred)
        answers.answer_bytes = sum(
            100 if o.pending else self.answer_bytes_per_task for o in answers.values()
        )
        return answers

    def _readable(self, outcome: TaskOutcome) -> TaskOutcome:
        if not isinstance(outcome.result, _Stored):
            return outcome
        return outcome._replace(result=self.fx_serializer.deserialize(outcome.result.text))

    def get_endpoint_status(self, endpoint_id: UuidLike) -> dict[str, Any]:
        """The optional member (``client_protocol``): ``endpoint_statuses``, else online."""
        spend_turn(self.request_budget)
        eid = str(endpoint_id)
        with self._cv:
            self.status_calls.append(eid)
            return dict(self.endpoint_statuses.get(eid, {"status": "online"}))

    def get_task_group(self, task_group_id: UuidLike) -> dict[str, Any]:
        with self._cv:
            ids = list(self._outcomes)
        return {"taskgroup_id": str(task_group_id), "tasks": [{"id": t} for t in ids]}

    # -- test controls --------------------------------------------------------------------------

    def finish(self, *task_ids: str) -> None:
        """Run the given tasks (all pending ones if none are named) and record their outcome."""
        with self._cv:
            if not task_ids:
                task_ids = tuple(t for t, o in self._outcomes.items() if o.pending)
            for tid in task_ids:
                function_id, payload = self._calls[tid]
                args, kwargs = map(self.fx_serializer.deserialize, unpack_buffers(payload))
                try:
                    function = self.fx_serializer.deserialize(self.functions[function_id])
                    result = _Stored(self.fx_serializer.serialize(function(*args, **kwargs)))
                    outcome = TaskOutcome(TaskState.SUCCESS.value, False, result, completion_t="1")
                except Exception:
                    error = TaskExecutionFailed(traceback.format_exc(), "1")
                    outcome = TaskOutcome(
                        TaskState.FAILED.value, False, exception=error, completion_t="1"
                    )
                self._outcomes[tid] = outcome
            self._cv.notify_all()

    def set_outcome(self, task_id: str, outcome: TaskOutcome) -> None:
        """Make the service report ``outcome`` for ``task_id`` from now on (a successful
        outcome's ``result`` is the object itself, handed out as it is)."""
        with self._cv:
            self._outcomes[task_id] = outcome
            self._cv.notify_all()

    def forget(self, task_id: str) -> None:
        with self._cv:
            self._outcomes.pop(task_id, None)

    def submitted_payload_count(self) -> int:
        with self._cv:
            return sum(len(b) for b in self.batches)


if TYPE_CHECKING:
    _implements_the_protocol: ExecutorClient[FakeBatch] = FakeClient()
