"""What the Executor needs of a client: exactly these members, and nothing else.

``globus_compute.Client`` implements :class:`ExecutorClient`, and so does the in-memory fake of
the Executor's unit tests (``tests/support/fake_client.py``), which is how those tests run the
Executor's threads without HTTP. Anything else passed as ``Executor(client=...)`` must too.

The Executor registers functions (once each), builds one batch per submit request from
payloads it packed itself, reads typed outcomes (``TaskOutcomes``) for the tasks it polls, and
lists a task group when reloading. It paces itself by two properties of the client: its
``request_budget`` (None: requests are free) and whether the service holds polls
(``long_poll``). The batch type is the client's own (``Batch`` for our Client), hence the
type parameter.

One more member is optional: ``get_endpoint_status(endpoint_id) -> dict`` (``Client`` has it).
With it the result poller tells the user when pending tasks wait on an offline endpoint
(``endpoint_watch``); a client without it is never asked, and ``progress().waiting_on`` stays
empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from globus_compute.client.request_budget import RequestBudget
from globus_compute.client.task_table import TaskOutcomes
from globus_compute.protocol.ids import UuidLike
from globus_compute.serialize import ComputeSerializer

__all__ = ["ExecutorClient", "PayloadBatch"]


class PayloadBatch(Protocol):
    """One submit request being filled: payloads packed by ``pack_task_payload``."""

    def add_payloads(self, function_id: str, payloads: Sequence[str]) -> None: ...

    def __len__(self) -> int: ...


BatchT = TypeVar("BatchT", bound=PayloadBatch)


class ExecutorClient(Protocol[BatchT]):
    """The client interface of ``Executor``.

    Attributes:
        fx_serializer: Serializes function code and task arguments, deserializes results;
            ``Executor.serializer`` reads and replaces it.
        service_url: The service's base URL (shown in logs).
        request_budget: The identity's shared request budget; every request the client makes
            takes a turn in it (``request_budget.spend_turn``). None: no limit to respect.
        long_poll: Whether ``get_task_outcomes(wait=...)`` is held by the service until a
            result is ready (the embedded service); if not, the poller paces itself.
    """

    fx_serializer: ComputeSerializer
    request_budget: RequestBudget | None
    long_poll: bool

    @property
    def service_url(self) -> str: ...

    def register_function(
        self,
        function: Callable[..., Any],
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        group: UuidLike | None = None,
        ha_endpoint_id: UuidLike | None = None,
    ) -> str:
        """Register a function; returns its id."""
        ...

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
        """Register source code defining ``function_name``; returns its id."""
        ...

    def create_batch(
        self,
        task_group_id: UuidLike | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        create_websocket_queue: bool = False,
        result_serializers: list[str] | None = None,
    ) -> BatchT:
        """An empty batch for one submit request with these shared fields."""
        ...

    def batch_run(self, endpoint_id: UuidLike, batch: BatchT) -> dict[str, Any]:
        """Submit the batch; the service's answer (``tasks``, ``task_group_id``, ...)."""
        ...

    def get_task_outcomes(
        self, task_id_list: Iterable[UuidLike], *, wait: float = 0.0
    ) -> TaskOutcomes:
        """Outcomes of the tasks the service reported, keyed by canonical task id, with the
        answer's size (``answer_bytes``, 0 if unknown)."""
        ...

    def get_task_group(self, task_group_id: UuidLike) -> dict[str, Any]:
        """The task group document: ``taskgroup_id`` and ``tasks`` (``[{"id": ...}]``)."""
        ...
