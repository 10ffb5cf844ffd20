"""Exceptions raised by globus_compute.

The tree is small on purpose; anything a user catches is here::

    Exception
     ├── ComputeError                   base of SDK-side failures; str() == repr()
     │    ├── VersionMismatch           the service needs a newer SDK
     │    ├── SerdeError                a strategy or allow-list problem
     │    │    ├── SerializationError   (also ValueError) could not serialize a value
     │    │    └── DeserializationError (also ValueError) could not read a serialized string
     │    ├── TaskPending               Client.get_result on an unfinished task
     │    ├── ResultPollingError        (also RuntimeError) the Executor cannot fetch results
     │    └── TaskLost                  a worker or endpoint died while holding the task
     │         ├── WorkerLost
     │         └── EndpointLost
     ├── TaskExecutionFailed            the remote function raised; carries its traceback text
     └── MaxResultSizeExceeded          a result over the 10 MB limit (raised on the endpoint)

Every ``__init__`` passes all of its arguments to ``super().__init__`` so that each exception
survives pickling (``pickle`` rebuilds an exception as ``cls(*exc.args)``).

Remote failures arrive as text, never as pickled exceptions: the endpoint that raised may run a
different Python, and the service never unpickles user data. So ``TaskExecutionFailed`` never
re-raises the original type; it shows the remote traceback.
"""

from __future__ import annotations

import re
import textwrap
import time

__all__ = [
    "ComputeError",
    "VersionMismatch",
    "SerdeError",
    "SerializationError",
    "DeserializationError",
    "TaskPending",
    "ResultPollingError",
    "TaskLost",
    "WorkerLost",
    "EndpointLost",
    "TaskExecutionFailed",
    "MaxResultSizeExceeded",
]


class ComputeError(Exception):
    """Base of the SDK-side errors; like the reference, ``str()`` is the ``repr()``."""

    def __str__(self) -> str:
        return self.__repr__()


class VersionMismatch(ComputeError):
    """The service requires a newer SDK (or endpoint) than the one in use."""

    def __init__(self, version_message: str) -> None:
        super().__init__(version_message)
        self.version_message = version_message

    def __repr__(self) -> str:
        return f"Globus Compute Versioning Issue: {self.version_message}"


class SerdeError(ComputeError):
    """A serialization strategy or allow-list is invalid."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return self.reason


class SerializationError(SerdeError, ValueError):
    """A value could not be serialized by the chosen strategy."""

    def __repr__(self) -> str:
        return f"Serialization failed: {self.reason}"


class DeserializationError(SerdeError, ValueError):
    """A serialized string could not be read back (bad header, disallowed strategy, ...)."""

    def __repr__(self) -> str:
        return f"Deserialization failed: {self.reason}"


class TaskPending(ComputeError):
    """The task has not reached a terminal state; ``reason`` is its current status."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"Task is pending due to {self.reason}"


class ResultPollingError(ComputeError, RuntimeError):
    """The Executor's result poller stopped for good; set on every future it still owned."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"Result polling failed: {self.reason}"


class TaskLost(ComputeError):
    """Whatever ran the task died before it reported a result."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.reason}"


class WorkerLost(TaskLost):
    """The worker process running the task exited (crash, signal, ``os._exit``)."""


class EndpointLost(TaskLost):
    """The endpoint agent holding the task stopped heartbeating and its lease expired."""


_SERDE_HINT_RE = re.compile(r"dill|pickle|serializ", re.IGNORECASE)
_WORKER_LOST_RE = re.compile(r"\s*\S*WorkerLost:")

_SERDE_HINT = (
    "\n\nThis looks like a serialization problem. Code and data serialized with dill only load "
    "where Python (and dill) match the SDK's versions. Try a source-based code strategy, e.g. "
    "Executor(serializer=ComputeSerializer(strategy_code=AllCodeStrategies())), or "
    "Client.register_source_code()."
)
_WORKER_LOST_HINT = (
    "\n\nA worker process died while running this task. Besides crashes in native code, a Python "
    "version mismatch between this SDK and the endpoint's workers can cause it."
)


class TaskExecutionFailed(Exception):
    """The remote function raised, or the task failed on the endpoint.

    Args:
        remote_data: The remote traceback (or failure reason) as text.
        completion_t: When the task finished, unix seconds as a string (the wire format).
        task_details: Optional ``details`` document the endpoint reported.
    """

    def __init__(
        self,
        remote_data: str,
        completion_t: str | None = None,
        task_details: dict | None = None,
    ) -> None:
        super().__init__(remote_data, completion_t, task_details)
        self.remote_data = remote_data
        self.completion_t = completion_t or str(time.time())
        self.task_details = task_details

    def __str__(self) -> str:
        text = "\n" + textwrap.indent(self.remote_data, " ")
        if _WORKER_LOST_RE.search(self.remote_data):
            text += _WORKER_LOST_HINT
        elif _SERDE_HINT_RE.search(self.remote_data):
            text += _SERDE_HINT
        return text


class MaxResultSizeExceeded(Exception):
    """A task's serialized result is larger than the endpoint accepts."""

    def __init__(self, result_size: int, result_size_limit: int) -> None:
        super().__init__(result_size, result_size_limit)
        self.result_size = result_size
        self.result_size_limit = result_size_limit

    def __repr__(self) -> str:
        return f"MaxResultSizeExceeded({self.result_size}, {self.result_size_limit})"

    def __str__(self) -> str:
        return (
            f"Task result of {self.result_size}B exceeded current limit of "
            f"{self.result_size_limit}B"
        )
