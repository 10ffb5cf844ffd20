"""Task batches in the shape ``POST /v3/endpoints/{endpoint_id}/submit`` expects.

A task on the wire is a packed pair of serialized args and kwargs, filed under the id of a
registered function; the function's code is stored once by the service and prepended there.
The Executor serializes arguments in the caller's thread (so a bad argument fails that one
``submit``) and files the packed payloads with :meth:`Batch.add_payloads`; ``Client`` users call
:meth:`Batch.add` directly.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import platform
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import globus_sdk

from globus_compute.protocol.ids import UuidLike, as_uuid, optional_uuid
from globus_compute.protocol.task_buffer import pack_payload
from globus_compute.serialize import (
    ComputeSerializer,
    Strategylike,
    reference_import_path,
    resolve_strategy,
)
from globus_compute.version import REFERENCE_SDK_VERSION

log = logging.getLogger(__name__)

__all__ = ["Batch", "pack_task_payload", "result_serializer_path", "user_runtime"]

_default_serializer: ComputeSerializer | None = None
_user_runtime: dict[str, Any] | None = None


def _serializer_or_default(serializer: ComputeSerializer | None) -> ComputeSerializer:
    global _default_serializer
    if serializer is not None:
        return serializer
    if _default_serializer is None:
        _default_serializer = ComputeSerializer()
    return _default_serializer


def pack_task_payload(
    serializer: ComputeSerializer,
    args: tuple[Any, ...] | list[Any] | None,
    kwargs: dict[str, Any] | None,
) -> str:
    """Validate and serialize one call's arguments into a task payload.

    Args:
        serializer: Serializes ``args`` and ``kwargs`` (each as one data value).
        args: Positional arguments, a tuple or a list (a list stays a list); None means ``()``.
        kwargs: Keyword arguments with ``str`` keys; None means ``{}``.

    Returns:
        ``pack_payload(serialize(args), serialize(kwargs))``.

    Raises:
        TypeError: If ``args`` or ``kwargs`` has the wrong type, or a kwargs key is not a str.
        SerializationError: If a value cannot be serialized.
    """
    if args is None:
        args = ()
    elif not isinstance(args, (tuple, list)):
        raise TypeError(f"args: expected `tuple`, got: {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    elif not isinstance(kwargs, dict):
        raise TypeError(f"kwargs: expected dict, got: {type(kwargs).__name__}")
    else:
        for key in kwargs:
            if not isinstance(key, str):
                raise TypeError(
                    f"kwargs: expected kwargs with `str` keys, got: {type(key).__name__}"
                )
    return pack_payload(serializer.serialize(args), serializer.serialize(kwargs))


def _collect_user_runtime() -> dict[str, Any]:
    # Field names and order are the reference UserRuntime dataclass's, as asdict() emits them.
    return {
        "globus_compute_sdk_version": REFERENCE_SDK_VERSION,
        "globus_sdk_version": globus_sdk.__version__,
        "python_version": sys.version,
        "python": {
            "version": platform.python_version(),
            "version_description": sys.version,
            "version_tuple": tuple(sys.version_info[:3]),
            "version_info": tuple(sys.version_info),
            "implementation": platform.python_implementation(),
            "compiler": platform.python_compiler(),
        },
        "platform": {
            "architecture": platform.architecture(),
            "machine": platform.machine(),
            "node": platform.node(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "release": platform.release(),
        },
    }


def user_runtime() -> dict[str, Any]:
    """Describe this Python runtime the way the reference SDK's ``UserRuntime`` does.

    The service hands it to multi-user endpoint config templates. ``globus_compute_sdk_version``
    is the reference version we speak, since templates compare it against reference releases.
    Collected once per process (``platform`` calls can spawn subprocesses), copied per call so
    callers may edit their copy.
    """
    global _user_runtime
    if _user_runtime is None:
        _user_runtime = _collect_user_runtime()
    return copy.deepcopy(_user_runtime)


def result_serializer_path(strategy_like: Strategylike) -> str:
    """The import path a ``result_serializers`` entry travels as.

    A reference path is already what an endpoint imports: it is checked and sent as given (as
    the reference Batch does). Anything else (our classes, instances, our paths) becomes a
    reference path.

    Raises:
        SerdeError: Not a known serialization strategy.
    """
    if isinstance(strategy_like, str) and strategy_like.startswith("globus_compute_sdk."):
        resolve_strategy(strategy_like)
        return strategy_like
    return reference_import_path(strategy_like)


class Batch:
    """Tasks for one endpoint submission, grouped by function id.

    Args:
        task_group_id: Group to submit into; falsy lets the service create one.
        resource_specification: Per-task resource needs (``num_nodes``, ...); sent if truthy.
        user_endpoint_config: Template values for multi-user endpoints; sent if truthy.
        request_queue: Sent as ``create_queue``; asks the service for an AMQP result queue.
        serializer: Serializes args and kwargs in :meth:`add`; a default one otherwise.
        user_runtime: A :func:`user_runtime` document; sent if given.
        result_serializers: Strategies the endpoint should try for results, in order; sent as
            reference import paths.

    Raises:
        ValueError: If ``task_group_id`` is not a UUID.
        SerdeError: If a result serializer is not a known strategy.
    """

    def __init__(
        self,
        task_group_id: UuidLike | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        request_queue: bool = False,
        serializer: ComputeSerializer | None = None,
        user_runtime: dict[str, Any] | None = None,
        result_serializers: Iterable[Strategylike] | None = None,
    ) -> None:
        self._task_group_id: uuid.UUID | None = None
        self.task_group_id = task_group_id  # type: ignore[assignment]
        self.resource_specification = resource_specification
        self.user_endpoint_config = user_endpoint_config
        self.request_queue = request_queue
        self.user_runtime = user_runtime
        self.result_serializers: list[str] | None = (
            [result_serializer_path(s) for s in result_serializers] if result_serializers else None
        )
        self.tasks: dict[uuid.UUID, list[str]] = {}
        self._serializer = _serializer_or_default(serializer)

    @property
    def task_group_id(self) -> uuid.UUID | None:
        """The task group, as a UUID, or None to let the service create one."""
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, value: UuidLike | None) -> None:
        self._task_group_id = optional_uuid(value, "task_group_id") if value else None

    def __len__(self) -> int:
        return sum(len(payloads) for payloads in self.tasks.values())

    def __repr__(self) -> str:
        return f"Batch(task_group_id={self.task_group_id}, tasks={len(self)})"

    def add(
        self,
        function_id: UuidLike,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Serialize one call and add it to the batch.

        Raises:
            ValueError: If ``function_id`` is not a UUID.
            TypeError: If ``args``/``kwargs`` have the wrong types (see :func:`pack_task_payload`).
            SerializationError: If an argument cannot be serialized.
        """
        function_uuid = as_uuid(function_id, "function_id")
        payload = pack_task_payload(self._serializer, args, kwargs)
        self.tasks.setdefault(function_uuid, []).append(payload)

    def add_payload(self, function_id: UuidLike, payload: str) -> None:
        """Add a call whose arguments were already packed by :func:`pack_task_payload`.

        Raises:
            ValueError: If ``function_id`` is not a UUID.
            TypeError: If ``payload`` is not a str.
        """
        self.add_payloads(function_id, (payload,))

    def add_payloads(self, function_id: UuidLike, payloads: Sequence[str]) -> None:
        """Add several packed calls of one function (the Executor's submitter files a batch so).

        Raises:
            ValueError: If ``function_id`` is not a UUID.
            TypeError: If a payload is not a str (nothing is added then).
        """
        for payload in payloads:
            if not isinstance(payload, str):
                raise TypeError(f"payload: expected `str`, got: {type(payload).__name__}")
        self.tasks.setdefault(as_uuid(function_id, "function_id"), []).extend(payloads)

    def prepare(self) -> dict[str, Any]:
        """The JSON body for the submit route, keys in the reference order.

        Raises:
            ValueError: If the batch holds no task; the service would accept an empty
                submission and do nothing, which always hides a caller's mistake.
        """
        if not len(self):
            raise ValueError("No tasks specified for batch run")
        body: dict[str, Any] = {
            "create_queue": self.request_queue,
            "tasks": {str(fn_id): list(payloads) for fn_id, payloads in self.tasks.items()},
        }
        if self.task_group_id:
            body["task_group_id"] = str(self.task_group_id)
        if self.resource_specification:
            body["resource_specification"] = self.resource_specification
        if self.user_endpoint_config:
            body["user_endpoint_config"] = self.user_endpoint_config
        if self.user_runtime:
            runtime = self.user_runtime
            if dataclasses.is_dataclass(runtime) and not isinstance(runtime, type):
                runtime = dataclasses.asdict(runtime)  # a reference ``UserRuntime``
            body["user_runtime"] = runtime
        if self.result_serializers:
            body["result_serializers"] = list(self.result_serializers)
        return body
