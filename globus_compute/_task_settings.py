"""The per-task settings of an Executor, validated when set and snapshotted at each submit.

These are the reference ``Executor``'s public attributes (same names, same validation): a user
may change them between submits, and each task keeps the values it was submitted with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from globus_compute._executor_support import json_dict, optional_uuid, wire_strategy
from globus_compute.serialize import ComputeSerializer


class TaskSettings:
    """Mixin holding the endpoint, task group, resources and serializers of new tasks.

    ``task_group_id`` is shared as in the reference: setting it on any Executor makes it the
    default of Executors created later in this process, so their tasks join one group.
    """

    _default_task_group_id: ClassVar[uuid.UUID | None] = None

    client: Any
    _endpoint_id: uuid.UUID | None
    _task_group_id: uuid.UUID | None
    #: String forms of the two ids, kept by the setters: ``submit`` needs them for every task.
    _endpoint_str: str
    _task_group_str: str | None
    _resource_specification: dict[str, Any] | None
    _user_endpoint_config: dict[str, Any] | None
    _result_serializers: list[Any] | None
    _result_serializer_paths: tuple[str, ...] | None

    def _init_task_settings(
        self,
        endpoint_id: uuid.UUID | str | None,
        task_group_id: uuid.UUID | str | None,
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
        result_serializers: Iterable[Any] | None,
    ) -> None:
        """Validate and set every setting (the constructor's share of the work)."""
        self.endpoint_id = endpoint_id  # type: ignore[assignment]
        self.task_group_id = task_group_id or TaskSettings._default_task_group_id  # type: ignore
        self.resource_specification = resource_specification
        self.user_endpoint_config = user_endpoint_config
        self.result_serializers = result_serializers  # type: ignore[assignment]

    @property
    def endpoint_id(self) -> uuid.UUID | None:
        """The endpoint new tasks go to (checked at submit time)."""
        return self._endpoint_id

    @endpoint_id.setter
    def endpoint_id(self, value: uuid.UUID | str | None) -> None:
        self._endpoint_id = optional_uuid(value, "endpoint_id")
        self._endpoint_str = str(self._endpoint_id)

    @property
    def task_group_id(self) -> uuid.UUID | None:
        """The task group new tasks join; setting it also sets the default of later Executors."""
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, value: uuid.UUID | str | None) -> None:
        tg = optional_uuid(value, "task_group_id")
        self._task_group_id = tg
        self._task_group_str = None if tg is None else str(tg)
        if tg is not None:
            TaskSettings._default_task_group_id = tg

    @property
    def resource_specification(self) -> dict[str, Any] | None:
        """Per-task resource requirements; snapshotted (deep-copied) at each submit."""
        return self._resource_specification

    @resource_specification.setter
    def resource_specification(self, value: dict[str, Any] | None) -> None:
        self._resource_specification = json_dict(value, "Resource specification")

    @property
    def user_endpoint_config(self) -> dict[str, Any] | None:
        """Multi-user endpoint template values; snapshotted (deep-copied) at each submit."""
        return self._user_endpoint_config

    @user_endpoint_config.setter
    def user_endpoint_config(self, value: dict[str, Any] | None) -> None:
        self._user_endpoint_config = json_dict(value, "User endpoint configuration")

    @property
    def result_serializers(self) -> list[Any] | None:
        """Strategies the endpoint tries, in order, to serialize results."""
        return self._result_serializers

    @result_serializers.setter
    def result_serializers(self, value: Iterable[Any] | None) -> None:
        if value is None:
            self._result_serializers = self._result_serializer_paths = None
            return
        items = list(value)
        self._result_serializer_paths = tuple(wire_strategy(s) for s in items) or None
        self._result_serializers = items

    @property
    def serializer(self) -> ComputeSerializer:
        """The client's serializer: function code, task arguments and results."""
        return self.client.fx_serializer

    @serializer.setter
    def serializer(self, value: ComputeSerializer) -> None:
        if not isinstance(value, ComputeSerializer):
            raise TypeError(f"Expected ComputeSerializer, got {type(value).__name__}")
        self.client.fx_serializer = value
