"""The per-task settings of an Executor: one value, validated when made, read once per submit.

These are the reference ``Executor``'s public attributes (same names, same validation): a user
may change them between submits, and each task keeps the values it was submitted with. The
Executor holds one :class:`TaskSettings` and replaces it whenever an attribute is set, so a
``submit`` reads a consistent set with a single attribute access, and the strings every task
needs (endpoint id, task group id, result serializer paths) are computed once per change, not
once per task.

The two dicts stay the caller's objects, as in the reference, so an in-place change is seen by
later submits: :meth:`TaskSettings.submit_key` snapshots them (sorted-key JSON, a deep copy and
a hashable key in one) at each submit.

``task_group_id`` is shared as in the reference: setting it on any Executor makes it the default
of Executors created later in this process, so their tasks join one group
(:func:`default_task_group_id`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from globus_compute.client.batch import result_serializer_path
from globus_compute.protocol.ids import optional_uuid

__all__ = [
    "SettingsCell",
    "SubmitGroupKey",
    "TaskSettings",
    "canonical_json",
    "default_task_group_id",
    "remember_task_group_id",
]

#: The task group the last Executor of this process used or was given (the reference shares it).
_default_task_group_id: uuid.UUID | None = None


def default_task_group_id() -> uuid.UUID | None:
    """The task group a new Executor joins when it is given none."""
    return _default_task_group_id


def remember_task_group_id(task_group_id: uuid.UUID) -> None:
    """Make ``task_group_id`` the default of Executors created later in this process."""
    global _default_task_group_id
    _default_task_group_id = task_group_id


class SubmitGroupKey(NamedTuple):
    """The fields one submit request shares; tasks with equal keys can be batched together."""

    endpoint_id: str
    task_group_id: str | None
    resource_specification: str | None  # canonical JSON (sorted keys), or None
    user_endpoint_config: str | None  # canonical JSON (sorted keys), or None
    result_serializers: tuple[str, ...] | None  # reference import paths


def canonical_json(value: dict[str, Any] | None) -> str | None:
    """Snapshot a dict as sorted-key JSON: a hashable group key and a deep copy in one."""
    return None if value is None else json.dumps(value, sort_keys=True)


def json_dict(value: object, what: str) -> dict[str, Any] | None:
    """``value`` if it is None or a JSON-serializable dict.

    Raises:
        TypeError: Anything else; the message starts with ``what``.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be of type dict, not {type(value).__name__}")
    try:
        canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable") from exc
    return value


def _result_serializers(value: Iterable[Any] | None) -> list[Any] | None:
    return None if value is None else list(value)


#: How each field is checked (and normalized) when set.
_VALIDATE: dict[str, Callable[[Any], Any]] = {
    "endpoint_id": lambda value: optional_uuid(value, "endpoint_id"),
    "task_group_id": lambda value: optional_uuid(value, "task_group_id"),
    "resource_specification": lambda value: json_dict(value, "Resource specification"),
    "user_endpoint_config": lambda value: json_dict(value, "User endpoint configuration"),
    "result_serializers": _result_serializers,
}


@dataclass(frozen=True)
class TaskSettings:
    """The endpoint, task group, resources and serializers of new tasks.

    Build one with :meth:`validated` and change it with :meth:`replace`; both check what they
    are given as the reference Executor's setters do.

    Attributes:
        endpoint_id: The endpoint new tasks go to (checked at submit time).
        task_group_id: The task group new tasks join; None lets the service create one.
        resource_specification: Per-task resource requirements (a JSON-able dict).
        user_endpoint_config: Multi-user endpoint template values (a JSON-able dict).
        result_serializers: Strategies the endpoint tries, in order, to serialize results.
        endpoint_str: ``endpoint_id`` as the string a submit sends.
        task_group_str: ``task_group_id`` as a string, or None.
        result_serializer_paths: ``result_serializers`` as reference import paths, or None.
    """

    endpoint_id: uuid.UUID | None = None
    task_group_id: uuid.UUID | None = None
    resource_specification: dict[str, Any] | None = None
    user_endpoint_config: dict[str, Any] | None = None
    result_serializers: list[Any] | None = None
    endpoint_str: str = field(init=False, repr=False)
    task_group_str: str | None = field(init=False, repr=False)
    result_serializer_paths: tuple[str, ...] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        paths = None
        if self.result_serializers is not None:
            paths = tuple(result_serializer_path(s) for s in self.result_serializers) or None
        tg = self.task_group_id
        object.__setattr__(self, "endpoint_str", str(self.endpoint_id))
        object.__setattr__(self, "task_group_str", None if tg is None else str(tg))
        object.__setattr__(self, "result_serializer_paths", paths)

    @classmethod
    def validated(
        cls,
        endpoint_id: uuid.UUID | str | None = None,
        task_group_id: uuid.UUID | str | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        result_serializers: Iterable[Any] | None = None,
    ) -> TaskSettings:
        """Settings from user input.

        Raises:
            ValueError: A malformed UUID.
            TypeError: A resource specification or endpoint config that is not a JSON-able dict.
            SerdeError: A result serializer that is not a known strategy.
        """
        return cls().replace(
            endpoint_id=endpoint_id,
            task_group_id=task_group_id,
            resource_specification=resource_specification,
            user_endpoint_config=user_endpoint_config,
            result_serializers=result_serializers,
        )

    def replace(self, **changes: Any) -> TaskSettings:
        """A copy with the named fields changed; only those are checked (see :meth:`validated`).

        Raises:
            TypeError: An unknown field name, or as :meth:`validated`.
        """
        unknown = set(changes) - set(_VALIDATE)
        if unknown:
            raise TypeError(f"not a task setting: {', '.join(sorted(unknown))}")
        checked = {name: _VALIDATE[name](value) for name, value in changes.items()}
        return dataclasses.replace(self, **checked)

    def submit_key(self) -> SubmitGroupKey:
        """The submit group of a task submitted now (the dicts are snapshotted here)."""
        return SubmitGroupKey(
            self.endpoint_str,
            self.task_group_str,
            canonical_json(self.resource_specification),
            canonical_json(self.user_endpoint_config),
            self.result_serializer_paths,
        )


class SettingsCell:
    """An Executor's current :class:`TaskSettings`, replaced whole under a lock.

    The Executor and its submitter thread share the cell, so the thread can read the task group
    of a batch and record one the service created without holding a reference to the Executor
    (which must stay collectable; see ``submitter``).

    Args:
        settings: The first settings.

    Attributes:
        current: The settings in force (one attribute read: a consistent set).
    """

    def __init__(self, settings: TaskSettings) -> None:
        self._lock = threading.Lock()
        self.current = settings
        if settings.task_group_id is not None:
            remember_task_group_id(settings.task_group_id)

    def change(self, **change: Any) -> None:
        """Replace the named fields (checked as :meth:`TaskSettings.replace` checks them)."""
        with self._lock:
            self.current = self.current.replace(**change)
            task_group_id = self.current.task_group_id
        if "task_group_id" in change and task_group_id is not None:
            remember_task_group_id(task_group_id)

    def current_task_group(self) -> str | None:
        """The task group now, for a batch queued without one."""
        return self.current.task_group_str

    def learn_task_group(self, task_group_id: str) -> None:
        """Adopt the group the service created for such a batch, unless one was set meanwhile."""
        with self._lock:
            if self.current.task_group_id is not None:
                return
            self.current = self.current.replace(task_group_id=task_group_id)
            learned = self.current.task_group_id
        if learned is not None:
            remember_task_group_id(learned)
