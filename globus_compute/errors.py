"""Exceptions raised by globus_compute: one tree, and anything a user catches is here::

    Exception
     ├── ComputeError                     base of SDK-side failures
     │    ├── VersionMismatch             the service needs a newer SDK
     │    ├── SerdeError                  a strategy or allow-list problem
     │    │    ├── SerializationError     (also ValueError) could not serialize a value
     │    │    └── DeserializationError   (also ValueError) could not read a serialized string
     │    │         └── UntrustedResult     a result from an endpoint you do not own, in a
     │    │                                   format that would run its owner's code here
     │    ├── TaskPending                 Client.get_result on an unfinished task
     │    ├── ResultPollingError          (also RuntimeError) the Executor cannot fetch results
     │    ├── TaskLost                    a worker or endpoint died while holding the task
     │    │    ├── WorkerLost
     │    │    └── EndpointLost
     │    ├── ExecutorShutdown            (also RuntimeError) submit after shutdown or exit
     │    ├── ExecutorBroken              (also concurrent.futures.BrokenExecutor) a background
     │    │                                 thread of the Executor died; every future it owned
     │    │                                 failed with this, and submit raises it
     │    ├── InvalidServiceResponse      (also ValueError) the service answered with a
     │    │                                 document we cannot use (a submit, a task)
     │    ├── RequestCancelled            a request waiting for its turn in the request budget
     │    │                                 (or out a 429's Retry-After) was called off
     │    ├── ServiceRefused              an agent's request refused for good (http_status)
     │    ├── LocalComputeError           (also RuntimeError) the embedded stack cannot start
     │    ├── LocalTokenMissing           (also FileNotFoundError) no local token to use
     │    ├── UnsafeStateDir              a state dir, token file or service socket that
     │    │                                 another local user controls
     │    └── EndpointConfigError         (also ValueError) a malformed endpoint config file
     ├── TaskExecutionFailed              the remote function raised; carries its traceback text
     └── MaxResultSizeExceeded            a result over the 10 MB limit (raised on the endpoint)

Errors of the REST calls themselves are globus-sdk's (``globus_sdk.GlobusAPIError`` and its
``ComputeAPIError``, with ``http_status``, ``code`` and ``request_id``), exactly as the reference
SDK raises them.

The classes that mirror the reference SDK (down to ``TaskLost``) keep its ``str() == repr()``
texts; the SDK's own additions print their message. Every ``__init__`` passes all of its
arguments to ``super().__init__`` so that each exception survives pickling (``pickle``
rebuilds an exception as ``cls(*exc.args)``).

Remote failures arrive as text, never as pickled exceptions: the endpoint that raised may run a
different Python, and the service never unpickles user data. So ``TaskExecutionFailed`` never
re-raises the original type; it shows the remote traceback.
"""

from __future__ import annotations

import concurrent.futures
import re
import textwrap
import time

__all__ = [
    "ComputeError",
    "VersionMismatch",
    "SerdeError",
    "SerializationError",
    "DeserializationError",
    "UntrustedResult",
    "TaskPending",
    "ResultPollingError",
    "TaskLost",
    "WorkerLost",
    "EndpointLost",
    "ExecutorShutdown",
    "ExecutorBroken",
    "InvalidServiceResponse",
    "RequestCancelled",
    "ServiceRefused",
    "LocalComputeError",
    "LocalTokenMissing",
    "UnsafeStateDir",
    "EndpointConfigError",
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


class UntrustedResult(DeserializationError):
    """A task's result was not deserialized: loading it would run another identity's code.

    Results in formats that execute code when loaded (dill, pickle, source) are read only from
    endpoints the caller owns, unless ``Client(trust_foreign_results=True)``; a result in JSON
    (``result_serializers=[JSONData()]``) is read from any endpoint.
    """


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


class _MessageError(ComputeError):
    """An SDK failure of our own: ``str()`` is its message (no reference text to mirror)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ExecutorShutdown(_MessageError, RuntimeError):
    """The Executor was shut down (or the interpreter is exiting); it takes no new work."""


class ExecutorBroken(_MessageError, concurrent.futures.BrokenExecutor):
    """A background thread of the Executor died; the message says which and why.

    Every future that thread owned fails with this error, and so does every later ``submit``,
    as with a ``ProcessPoolExecutor`` whose worker died (``BrokenProcessPool``).
    """


class InvalidServiceResponse(_MessageError, ValueError):
    """The Compute service answered with a document that cannot be used as it is."""


class RequestCancelled(_MessageError):
    """A request was waiting for its turn (the request budget, a 429's ``Retry-After``) and
    was called off by a shutdown; it was not sent."""


class ServiceRefused(_MessageError):
    """The service refused an endpoint agent's request for a reason retrying will not fix.

    Args:
        http_status: The response status code.
        message: The response body (the service's JSON error document as text).
    """

    def __init__(self, http_status: int, message: str) -> None:
        ComputeError.__init__(self, http_status, message)
        self.http_status = http_status
        self.message = message

    def __str__(self) -> str:
        return f"HTTP {self.http_status}: {self.message[:500]}"

    def __repr__(self) -> str:
        return f"ServiceRefused({self.http_status}, {self.message[:500]!r})"


class LocalComputeError(_MessageError, RuntimeError):
    """The embedded service or endpoint could not be started (the message has its log tail)."""


class LocalTokenMissing(ComputeError, FileNotFoundError):
    """``environment="local"`` was asked for, but no embedded service has written a token."""

    def __init__(self, path: str) -> None:
        ComputeError.__init__(self, path)
        self.path = path

    def __str__(self) -> str:
        return (
            f"No token for the local Compute service at {self.path}. Start it with "
            "`globus-compute-local up` (or pass authorizer=... / base_url=... explicitly)."
        )

    def __repr__(self) -> str:
        return f"LocalTokenMissing({self.path!r})"


class UnsafeStateDir(_MessageError):
    """A state dir, token file or socket that another local user owns or could replace.

    The message names the path and what to change (``chmod``, or another directory). Not an
    ``OSError``, so that HTTP layers do not mistake it for a network failure worth retrying.
    """


class EndpointConfigError(_MessageError, ValueError):
    """The endpoint config file is malformed or names something Parsl does not have."""


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
