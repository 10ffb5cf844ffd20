"""Turning task documents from the service into outcomes, and remembering finished ones.

A task document (``GET /v2/tasks/{id}``, or one value of ``POST /v2/batch_status``) becomes a
:class:`TaskOutcome`: pending, or finished with exactly one of a result or an exception. The
Executor's poller reads outcomes as they are; ``Client.get_task`` and ``get_batch_result`` hand
out the reference SDK's status entries, which :meth:`TaskOutcome.as_entry` spells::

    {"pending": True,  "status": "waiting-for-ep", "details"?: {...}}
    {"pending": False, "status": "success", "result": <object>, "completion_t": "<unix s>",
     "details"?: {...}}
    {"pending": False, "status": "failed", "exception": TaskExecutionFailed(...),
     "completion_t": "<unix s>", "reason"?: "<service text>", "details"?: {...}}

A document we cannot digest (wrong ``task_id``, undeserializable result) also becomes a finished
outcome whose ``exception`` says so (``InvalidServiceResponse``, ``DeserializationError``) and
whose status is ``failed``: an Executor polling for it must learn *why*, rather than wait for
ever or see ``None``. That holds whatever unpickling raises, ``SystemExit`` included: a result
is data, and reading it must not end the thread reading it. (The one exception is a
``KeyboardInterrupt`` on the main thread, which may be the user's Ctrl-C.) So does a result
that ``result_trust`` will not load (``UntrustedResult``: another identity's endpoint, in a
format that would run its code here). Those outcomes are not cached, since a retry (e.g. after
installing a missing module) may succeed.

Finished outcomes are kept in a bounded LRU (``DEFAULT_TASK_CACHE_SIZE`` per Client): a result
is fetched from the service once, yet a long-running Executor does not grow without limit.
Results can be up to 10 MB each, which is why the bound is modest.
"""

from __future__ import annotations

import logging
import platform
import threading
import warnings
from collections import OrderedDict
from typing import Any, NamedTuple, Protocol

import dill

from globus_compute.client.result_trust import ResultTrust
from globus_compute.errors import (
    DeserializationError,
    InvalidServiceResponse,
    TaskExecutionFailed,
    UntrustedResult,
)
from globus_compute.protocol.states import TaskState, is_terminal

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TASK_CACHE_SIZE", "TaskEntry", "TaskOutcome", "TaskOutcomes", "TaskTable"]

#: Finished tasks remembered per Client (least recently used are dropped first).
DEFAULT_TASK_CACHE_SIZE = 1024

#: The reference SDK's status entry, as ``Client.get_task`` returns it.
TaskEntry = dict[str, Any]


class Deserializer(Protocol):
    def deserialize(self, payload: str) -> Any: ...


class TaskOutcome(NamedTuple):
    """What one task document says, parsed: still pending, or finished one way or the other.

    Immutable, so one outcome may be cached and handed to many readers. (A named tuple rather
    than a frozen dataclass: the poller builds one per task per poll, and a frozen dataclass
    costs about four times as much to build.)

    Attributes:
        status: The task's state as the service spelled it, lowercased (``running``, ...).
        pending: True until the task reached a terminal state.
        result: The deserialized result of a task that succeeded (``exception`` is None).
        exception: Why a finished task has no result: ``TaskExecutionFailed`` (it failed),
            ``DeserializationError`` (its result cannot be read here) or
            ``InvalidServiceResponse`` (the document is unusable).
        completion_t: When the task finished, unix seconds as the wire's string, if known.
        reason: The service's own failure text, when it gave one.
        details: The document's ``details`` (endpoint, versions, transitions), if any.
    """

    status: str
    pending: bool
    result: Any = None
    exception: BaseException | None = None
    completion_t: str | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None

    @property
    def succeeded(self) -> bool:
        """True for a finished task whose result is in ``result``."""
        return not self.pending and self.exception is None

    def as_entry(self) -> TaskEntry:
        """This outcome as the reference SDK's status entry (see the module docstring)."""
        entry: TaskEntry = {"pending": self.pending, "status": self.status}
        if self.details is not None:
            entry["details"] = self.details
        if self.reason is not None:
            entry["reason"] = self.reason
        if self.completion_t is not None:
            entry["completion_t"] = self.completion_t
        if self.exception is not None:
            entry["exception"] = self.exception
        elif not self.pending:
            entry["result"] = self.result
        return entry


class TaskOutcomes(dict[str, TaskOutcome]):
    """The outcomes of one poll, keyed by task id, and the size of the answer they came in.

    Attributes:
        answer_bytes: Bytes of the service's answer body (0 when every outcome came from the
            cache). The Executor's poller sizes its next poll by it.
        deferred: Canonical ids of requested tasks the service left out because its answer
            was full (our service's ``deferred`` list): not unknown, to be asked again.
    """

    answer_bytes: int = 0
    deferred: frozenset[str] = frozenset()


#: The outcome of a pending task whose document says no more than its (known) state; shared,
#: since the poller sees these for every pending task on every poll.
_BARE_PENDING = {
    state.value: TaskOutcome(state.value, True) for state in TaskState if not state.terminal
}


def environment_mismatch(details: dict[str, Any]) -> str | None:
    """A warning text if the endpoint's Python (major.minor.micro) or dill differs from ours.

    Values the endpoint did not report are not counted as differences.
    """
    ours_py, ours_dill = platform.python_version(), dill.__version__
    theirs_py, theirs_dill = details.get("python_version"), details.get("dill_version")
    if (theirs_py in (None, ours_py)) and (theirs_dill in (None, ours_dill)):
        return None
    return (
        "Environment differences detected between local SDK and endpoint "
        f"{details.get('endpoint_id', '<unknown>')} workers:\n"
        f"\t    SDK: Python {ours_py}/Dill {ours_dill}\n"
        f"\tWorkers: Python {theirs_py}/Dill {theirs_dill}\n"
        "Functions and data serialized with dill may fail to load across these versions; "
        "a source-based code strategy avoids that."
    )


class TaskTable:
    """Parses task documents and caches finished outcomes; safe to share between threads.

    Args:
        serializer: Deserializes ``result`` strings (the Client's ``ComputeSerializer``).
        maxsize: Finished outcomes to keep.
        trust: Decides whether a result may be deserialized at all; None trusts every result.
    """

    def __init__(
        self,
        serializer: Deserializer,
        maxsize: int = DEFAULT_TASK_CACHE_SIZE,
        trust: ResultTrust | None = None,
    ) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.serializer = serializer
        self.maxsize = maxsize
        self.trust = trust
        self._finished: OrderedDict[str, TaskOutcome] = OrderedDict()
        self._warned_endpoints: set[str | None] = set()
        self._lock = threading.Lock()
        # Read once: every finished task's details are compared against them.
        self._our_versions = (platform.python_version(), dill.__version__)

    def __len__(self) -> int:
        return len(self._finished)

    def get(self, task_id: str) -> TaskOutcome | None:
        """The cached outcome of a finished task, or None."""
        with self._lock:
            outcome = self._finished.get(task_id)
            if outcome is not None:
                self._finished.move_to_end(task_id)
            return outcome

    def update(self, task_id: str, document: Any, remember: bool = True) -> TaskOutcome:
        """Parse ``document`` for ``task_id``; cache it if it is cleanly finished (and
        ``remember``)."""
        outcome, cacheable = self._parse(task_id, document)
        if cacheable and self.trust is not None:
            self.trust.forget(task_id)
        if remember and cacheable and self.maxsize:
            with self._lock:
                self._finished[task_id] = outcome
                self._finished.move_to_end(task_id)
                while len(self._finished) > self.maxsize:
                    self._finished.popitem(last=False)
        return outcome

    def _parse(self, task_id: str, doc: Any) -> tuple[TaskOutcome, bool]:
        if not isinstance(doc, dict):
            return _broken(task_id, "unknown", f"not a JSON object: {doc!r}"), False
        status = str(doc.get("status", "unknown")).lower()
        details = doc.get("details")
        if not is_terminal(status):
            bare = _BARE_PENDING.get(status) if details is None else None
            return bare or TaskOutcome(status, True, details=details), False
        if doc.get("task_id") != task_id:
            return _broken(task_id, status, f"returned invalid response: ({doc})"), False
        self._warn_on_mismatch(details)
        if "result" in doc:
            return self._success(task_id, status, doc, details)
        if status == TaskState.FAILED.value or "exception" in doc:
            return _failure(status, doc, details), True
        return _broken(task_id, status, "reported success without a result"), False

    def _success(
        self, task_id: str, status: str, doc: dict[str, Any], details: dict[str, Any] | None
    ) -> tuple[TaskOutcome, bool]:
        completion_t = doc.get("completion_t", "unknown")
        if self.trust is not None and isinstance(doc["result"], str):
            # Outside the try below: a failed ownership request must reach the caller (who
            # retries), not become this task's outcome.
            try:
                self.trust.check(task_id, doc["result"], details)
            except UntrustedResult as exc:
                outcome = TaskOutcome(
                    TaskState.FAILED.value,
                    False,
                    exception=exc,
                    completion_t=completion_t,
                    details=details,
                )
                return outcome, False
        try:
            result = self.serializer.deserialize(doc["result"])
        except BaseException as exc:  # SystemExit too: see the module docstring
            if isinstance(exc, KeyboardInterrupt) and _on_main_thread():
                raise
            log.warning("Could not deserialize the result of task %s: %r", task_id, exc)
            error = DeserializationError(f"the result of task {task_id}: {exc!r}")
            error.__cause__ = exc
            outcome = TaskOutcome(
                TaskState.FAILED.value,
                False,
                exception=error,
                completion_t=completion_t,
                details=details,
            )
            return outcome, False
        return TaskOutcome(status, False, result, completion_t=completion_t, details=details), True

    def _warn_on_mismatch(self, details: Any) -> None:
        if not isinstance(details, dict):
            return
        ours_py, ours_dill = self._our_versions
        theirs_py, theirs_dill = details.get("python_version"), details.get("dill_version")
        if theirs_py in (None, ours_py) and theirs_dill in (None, ours_dill):
            return  # the common case, decided without the lock
        endpoint_id = details.get("endpoint_id")
        message = environment_mismatch(details)
        with self._lock:
            if message is None or endpoint_id in self._warned_endpoints:
                return
            self._warned_endpoints.add(endpoint_id)
        warnings.warn(message, UserWarning, stacklevel=2)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _failure(status: str, doc: dict[str, Any], details: dict[str, Any] | None) -> TaskOutcome:
    # Fall back to the service's ``reason``: a failed task with no traceback (e.g. one the
    # service gave up on) still deserves an exception the user can read.
    reason = doc.get("reason")
    text = doc.get("exception") or reason or "Task failed (no reason given)"
    exc = TaskExecutionFailed(str(text), doc.get("completion_t"), details)
    return TaskOutcome(
        status, False, exception=exc, completion_t=exc.completion_t, reason=reason, details=details
    )


def _broken(task_id: str, status: str, why: str) -> TaskOutcome:
    log.error("Task %s %s", task_id, why)
    return TaskOutcome(status, False, exception=InvalidServiceResponse(f"Task {task_id} {why}"))
