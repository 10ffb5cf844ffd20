"""An in-memory stand-in for ``globus_compute.Client``, shared by the Executor unit tests.

It implements only the Client methods the Executor calls, with the same signatures and answer
shapes, and "runs" tasks in-process when they are submitted (or later, when a test says so).
Tests steer it through plain attributes: ``submit_gate`` holds ``batch_run`` until set,
``submit_errors``/``poll_errors`` make the next calls raise, ``auto_finish=False`` keeps tasks
pending until ``finish()``.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from typing import Any

from globus_compute.errors import TaskExecutionFailed
from globus_compute.serialize import ComputeSerializer, unpack_buffers


class FakeBatch:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.tasks: list[tuple[str, str]] = []

    def add_payload(self, function_id: str, payload: str) -> None:
        if not isinstance(payload, str):
            raise TypeError("payload must be str")
        self.tasks.append((str(uuid.UUID(str(function_id))), payload))

    def __len__(self) -> int:
        return len(self.tasks)


class HTTPError(Exception):
    """Looks like a globus-sdk GlobusAPIError to the poller (it reads ``http_status``)."""

    def __init__(self, http_status: int, message: str = "error") -> None:
        super().__init__(http_status, message)
        self.http_status = http_status


class FakeClient:
    def __init__(self, service_url: str = "http://127.0.0.1:8000", auto_finish: bool = True):
        self.service_url = service_url
        self.fx_serializer = ComputeSerializer()
        self.auto_finish = auto_finish
        self.functions: dict[str, Any] = {}
        self.registrations: list[str] = []
        self.batches: list[FakeBatch] = []
        self.batch_times: list[float] = []
        self.poll_calls: list[tuple[list[str], float]] = []
        self.submit_gate: threading.Event | None = None
        self.submit_started = threading.Event()
        self.submit_errors: list[BaseException] = []
        self.poll_errors: list[BaseException] = []
        self.task_group_id = str(uuid.uuid4())
        self._cv = threading.Condition()
        self._entries: dict[str, dict[str, Any]] = {}
        self._calls: dict[str, tuple[str, str]] = {}  # task id -> (function id, payload)

    # -- Client API -----------------------------------------------------------------------------

    def register_function(self, function: Any, description: str | None = None, **kw: Any) -> str:
        fid = str(uuid.uuid4())
        self.functions[fid] = function
        self.registrations.append(fid)
        return fid

    def register_source_code(self, source: str, function_name: str, **kw: Any) -> str:
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        return self.register_function(namespace[function_name])

    def create_batch(self, **options: Any) -> FakeBatch:
        return FakeBatch(**options)

    def batch_run(self, endpoint_id: Any, batch: FakeBatch) -> dict[str, Any]:
        self.submit_started.set()
        if self.submit_gate is not None:
            assert self.submit_gate.wait(30), "test never released the submit gate"
        with self._cv:
            self.batches.append(batch)
            self.batch_times.append(time.monotonic())
            if self.submit_errors:
                raise self.submit_errors.pop(0)
            tasks: dict[str, list[str]] = {}
            for function_id, payload in batch.tasks:
                tid = str(uuid.uuid4())
                tasks.setdefault(function_id, []).append(tid)
                self._calls[tid] = (function_id, payload)
                self._entries[tid] = {"pending": True, "status": "waiting-for-ep"}
            tg = batch.options.get("task_group_id") or self.task_group_id
        if self.auto_finish:
            self.finish(*[t for ids in tasks.values() for t in ids])
        return {
            "request_id": "r",
            "task_group_id": str(tg),
            "endpoint_id": str(endpoint_id),
            "tasks": tasks,
        }

    def get_batch_result(self, task_ids: list[str], *, wait: float = 0.0) -> dict[str, dict]:
        ids = list(task_ids)
        with self._cv:
            self.poll_calls.append((ids, wait))
            if self.poll_errors:
                raise self.poll_errors.pop(0)
            deadline = time.monotonic() + wait
            while wait > 0 and not any(
                not self._entries.get(t, {}).get("pending", True) for t in ids
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            return {t: dict(self._entries[t]) for t in ids if t in self._entries}

    def get_task_group(self, task_group_id: str) -> dict[str, Any]:
        with self._cv:
            ids = list(self._entries)
        return {"taskgroup_id": str(task_group_id), "tasks": [{"id": t} for t in ids]}

    # -- test controls --------------------------------------------------------------------------

    def finish(self, *task_ids: str) -> None:
        """Run the given tasks (all pending ones if none are named) and record their outcome."""
        with self._cv:
            if not task_ids:
                task_ids = tuple(t for t, e in self._entries.items() if e["pending"])
            for tid in task_ids:
                function_id, payload = self._calls[tid]
                args, kwargs = map(self.fx_serializer.deserialize, unpack_buffers(payload))
                try:
                    result = self.functions[function_id](*args, **kwargs)
                    entry = {"pending": False, "status": "success", "result": result}
                except Exception:
                    text = traceback.format_exc()
                    entry = {
                        "pending": False,
                        "status": "failed",
                        "exception": TaskExecutionFailed(text, "1"),
                    }
                entry["completion_t"] = "1"
                self._entries[tid] = entry
            self._cv.notify_all()

    def forget(self, task_id: str) -> None:
        with self._cv:
            self._entries.pop(task_id, None)

    def submitted_payload_count(self) -> int:
        with self._cv:
            return sum(len(b) for b in self.batches)
