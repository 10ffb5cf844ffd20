"""Turning task documents from the service into status entries, and remembering finished ones.

A task document (``GET /v2/tasks/{id}``, or one value of ``POST /v2/batch_status``) becomes one
of these entries::

    {"pending": True,  "status": "waiting-for-ep", "details"?: {...}}
    {"pending": False, "status": "success", "result": <object>, "completion_t": "<unix s>",
     "details"?: {...}}
    {"pending": False, "status": "failed", "exception": TaskExecutionFailed(...),
     "completion_t": "<unix s>", "reason"?: "<service text>", "details"?: {...}}

A finished entry carries exactly one of ``result`` or ``exception``. A document we cannot digest
(wrong ``task_id``, undeserializable result) also becomes a finished entry whose ``exception``
says so: an Executor polling for it must learn *why*, rather than wait forever. Those entries
are not cached, since a retry (e.g. after installing a missing module) may succeed.

Finished entries are kept in a bounded LRU (``DEFAULT_TASK_CACHE_SIZE`` entries per Client):
a result is fetched from the service once, yet a long-running Executor does not grow without
limit. Results can be up to 10 MB each, which is why the bound is modest.
"""

from __future__ import annotations

import logging
import platform
import threading
import warnings
from collections import OrderedDict
from typing import Any, Protocol

import dill

from globus_compute.errors import SerializationError, TaskExecutionFailed

log = logging.getLogger(__name__)

#: Finished task entries remembered per Client (least recently used are dropped first).
DEFAULT_TASK_CACHE_SIZE = 1024

TERMINAL_STATES = frozenset({"success", "failed"})

TaskEntry = dict[str, Any]


class Deserializer(Protocol):
    def deserialize(self, payload: str) -> Any: ...


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
    """Parses task documents and caches finished entries; safe to share between threads.

    Args:
        serializer: Deserializes ``result`` strings (the Client's ``ComputeSerializer``).
        maxsize: Finished entries to keep.
    """

    def __init__(self, serializer: Deserializer, maxsize: int = DEFAULT_TASK_CACHE_SIZE) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.serializer = serializer
        self.maxsize = maxsize
        self._finished: OrderedDict[str, TaskEntry] = OrderedDict()
        self._warned_endpoints: set[str | None] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._finished)

    def get(self, task_id: str) -> TaskEntry | None:
        """The cached entry of a finished task, or None."""
        with self._lock:
            entry = self._finished.get(task_id)
            if entry is not None:
                self._finished.move_to_end(task_id)
            return entry

    def update(self, task_id: str, document: dict[str, Any]) -> TaskEntry:
        """Parse ``document`` for ``task_id``; cache it if it is cleanly finished."""
        entry, cacheable = self._parse(task_id, document)
        if cacheable and self.maxsize:
            with self._lock:
                self._finished[task_id] = entry
                self._finished.move_to_end(task_id)
                while len(self._finished) > self.maxsize:
                    self._finished.popitem(last=False)
        return entry

    def _parse(self, task_id: str, doc: dict[str, Any]) -> tuple[TaskEntry, bool]:
        if not isinstance(doc, dict):
            return self._broken(task_id, "unknown", f"not a JSON object: {doc!r}"), False
        status = str(doc.get("status", "unknown")).lower()
        entry: TaskEntry = {"pending": status not in TERMINAL_STATES, "status": status}
        if "details" in doc:
            entry["details"] = doc["details"]
        if entry["pending"]:
            return entry, False
        if doc.get("task_id") != task_id:
            return self._broken(task_id, status, f"returned invalid response: ({doc})"), False
        self._warn_on_mismatch(doc.get("details"))
        if "result" in doc:
            return self._success(entry, doc)
        if status == "failed" or "exception" in doc:
            return self._failure(entry, doc), True
        return self._broken(task_id, status, "reported success without a result"), False

    def _success(self, entry: TaskEntry, doc: dict[str, Any]) -> tuple[TaskEntry, bool]:
        entry["completion_t"] = doc.get("completion_t", "unknown")
        try:
            entry["result"] = self.serializer.deserialize(doc["result"])
        except Exception as exc:
            log.debug("Could not deserialize the result of %s", doc.get("task_id"), exc_info=True)
            entry["exception"] = SerializationError(f"Result Object Deserialization: {exc!r}")
            return entry, False
        return entry, True

    @staticmethod
    def _failure(entry: TaskEntry, doc: dict[str, Any]) -> TaskEntry:
        # Fall back to the service's ``reason``: a failed task with no traceback (e.g. one the
        # service gave up on) still deserves an exception the user can read.
        if "reason" in doc:
            entry["reason"] = doc["reason"]
        text = doc.get("exception") or doc.get("reason") or "Task failed (no reason given)"
        exc = TaskExecutionFailed(str(text), doc.get("completion_t"), doc.get("details"))
        entry["exception"] = exc
        entry["completion_t"] = exc.completion_t
        return entry

    @staticmethod
    def _broken(task_id: str, status: str, why: str) -> TaskEntry:
        log.error("Task %s %s", task_id, why)
        return {
            "pending": False,
            "status": status,
            "exception": ValueError(f"Task {task_id} {why}"),
        }

    def _warn_on_mismatch(self, details: Any) -> None:
        if not isinstance(details, dict):
            return
        endpoint_id = details.get("endpoint_id")
        message = environment_mismatch(details)
        with self._lock:
            if message is None or endpoint_id in self._warned_endpoints:
                return
            self._warned_endpoints.add(endpoint_id)
        warnings.warn(message, UserWarning, stacklevel=2)
