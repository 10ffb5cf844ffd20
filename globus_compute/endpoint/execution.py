"""What a worker does with one claimed task: unpack, run, serialize, report.

Everything here runs inside a worker (a process of the process engine, or a thread of the
thread engine) and never raises: every outcome, including a malformed task buffer and a task
that raises ``SystemExit`` or ``KeyboardInterrupt``, becomes an
:class:`~globus_compute.protocol.agent.TaskResult` for that task alone, so one bad task cannot
take a worker down with it.

A task this endpoint cannot honour fails before it is loaded (:func:`refusal_text`): today that
is a task carrying a ``user_endpoint_config``. Those template values belong to multi-user
endpoints, which start an engine per user from a config template; every engine here serves one
owner, so running the task anyway would compute it under a configuration other than the one
asked for. The Parsl engine asks the same question before it hands a task to HTEX.

The result formats are the reference endpoint's (wire-spec sections 4.2 and 11): a successful
result is one serialized value, a failure is traceback text, an oversized result fails with the
``repr`` of :class:`~globus_compute.errors.MaxResultSizeExceeded`. The documents themselves are
built by :mod:`globus_compute.protocol.results`, the task buffer is split by
:func:`~globus_compute.protocol.task_buffer.unpack_task_buffer`.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import dill

from globus_compute.errors import MaxResultSizeExceeded
from globus_compute.protocol.agent import ClaimedTask, TaskResult
from globus_compute.protocol.results import completion_time, failed_result, success_result
from globus_compute.protocol.task_buffer import unpack_task_buffer
from globus_compute.serialize import ComputeSerializer
from globus_compute.version import REFERENCE_SDK_VERSION

#: The reference endpoint's limit on one serialized result, in characters.
RESULT_SIZE_LIMIT = 10 * 1024 * 1024

#: Deserialized functions kept per worker. Tasks usually reuse a handful of functions; the bound
#: only stops a stream of distinct functions from growing a worker without limit.
FUNCTION_CACHE_SIZE = 256

#: The failure text of a task carrying a ``user_endpoint_config`` (see :func:`refusal_text`).
USER_ENDPOINT_CONFIG_TEXT = (
    "ValueError: Task {task_id} carries a user_endpoint_config, which only multi-user "
    "endpoints accept (they start an engine per user from a config template). This endpoint "
    "is single-user; submit without user_endpoint_config.\n"
)

_THIS_FILE = __file__


def refusal_text(task: ClaimedTask) -> str | None:
    """Why no engine of this endpoint may run ``task`` at all, as its failure text; or None.

    Shared by every engine: :class:`TaskRunner` asks it first thing, the Parsl engine before it
    submits to HTEX.
    """
    if task.get("user_endpoint_config"):
        return USER_ENDPOINT_CONFIG_TEXT.format(task_id=task.get("task_id", ""))
    return None


def _strip_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the leading traceback entries that belong to this module.

    The user wants to see their own frames and their exception, not how we called them.
    """
    while tb is not None and tb.tb_frame.f_code.co_filename == _THIS_FILE:
        tb = tb.tb_next
    return tb


def format_user_exception(exc: BaseException) -> str:
    """Traceback text of an exception raised by user code, without our calling frames."""
    return "".join(traceback.format_exception(type(exc), exc, _strip_own_frames(exc.__traceback__)))


class TaskRunner:
    """Runs claimed tasks; one instance per worker, so its function cache outlives a task.

    Args:
        endpoint_id: Reported in every result's ``details``.
        allowed_serializers: The endpoint's deserializer allow-list (strategy import paths or
            wildcards, see ``serialize.allowlist``); a task whose function or arguments use
            another strategy fails without being loaded. Empty allows every strategy.
        serializer: Reads task buffers (overrides ``allowed_serializers``); default a
            ``ComputeSerializer`` with the allow-list.

    Raises:
        SerdeError: ``allowed_serializers`` names something that is not a strategy.
    """

    def __init__(
        self,
        endpoint_id: str,
        serializer: ComputeSerializer | None = None,
        *,
        allowed_serializers: Sequence[str] = (),
    ) -> None:
        self.endpoint_id = endpoint_id
        self.serializer = serializer or ComputeSerializer(
            allowed_deserializer_types=allowed_serializers or None
        )
        # Keyed by the function's serialized buffer: a no-op task must not pay for dill-loading
        # its function every time, and equal buffers always load to equivalent functions.
        self._functions: dict[str, Callable[..., Any]] = {}
        self._static_details = {
            "os": platform.system(),
            "python_version": platform.python_version(),
            "dill_version": dill.__version__,
            "globus_compute_sdk_version": REFERENCE_SDK_VERSION,
            "endpoint_id": endpoint_id,
        }

    def run(self, task: ClaimedTask) -> TaskResult:
        """Execute one task and describe the outcome; never raises."""
        result = self.run_if(task, _always)
        assert result is not None
        return result

    def run_if(self, task: ClaimedTask, may_start: Callable[[], bool]) -> TaskResult | None:
        """Like :meth:`run`, but ask ``may_start`` once the task is loaded, right before its
        function is called; None (nothing called) if it says no.

        The engine's last word on a start (``EngineContext.leases_current``): it comes after
        unpacking and deserializing, which take a while, and only a few bytecodes before the
        call.
        """
        start = time.time()
        task_id = task.get("task_id", "")
        refusal = refusal_text(task)
        if refusal is not None:
            return self._failed(task_id, refusal, start)
        try:
            fn, args, kwargs = self._load(task["task_buffer"])
        except Exception as exc:
            return self._failed(task_id, _load_failure_text(task_id, exc), start)

        if not may_start():
            return None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            # SystemExit and KeyboardInterrupt too: they are the task's outcome, not a reason
            # to stop the worker (a thread of the agent, on the thread engine).
            return self._failed(task_id, format_user_exception(exc), start)

        try:
            serialized = self.serializer.serialize_from_list(
                result, task.get("result_serializers") or []
            )
        except Exception as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            return self._failed(task_id, text, start)

        if len(serialized) > RESULT_SIZE_LIMIT:
            too_big = MaxResultSizeExceeded(len(serialized), RESULT_SIZE_LIMIT)
            return self._failed(task_id, repr(too_big), start)

        end = time.time()
        return success_result(
            task_id, serialized, self._details(start, end), completion_t=completion_time(end)
        )

    def _load(self, task_buffer: str) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        fn_buffer, args_buffer, kwargs_buffer = unpack_task_buffer(task_buffer)
        fn = self._functions.get(fn_buffer)
        if fn is None:
            fn = self.serializer.deserialize(fn_buffer, for_code=True)
            if not callable(fn):
                raise TypeError(f"the function buffer holds a {type(fn).__name__}, not a function")
            if len(self._functions) >= FUNCTION_CACHE_SIZE:
                self._functions.pop(next(iter(self._functions)))
            self._functions[fn_buffer] = fn
        # Arguments come from the submitter, who may be anyone on a public endpoint: they must
        # be data, so that a code strategy allowed for functions cannot smuggle a pickle in.
        args = self.serializer.deserialize(args_buffer, for_code=False)
        kwargs = self.serializer.deserialize(kwargs_buffer, for_code=False)
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise TypeError(
                f"args must be a tuple and kwargs a dict, got {type(args).__name__} and "
                f"{type(kwargs).__name__}"
            )
        return fn, tuple(args), kwargs

    def _failed(self, task_id: str, text: str, start: float) -> TaskResult:
        end = time.time()
        details = self._details(start, end)
        return failed_result(task_id, text, details, completion_t=completion_time(end))

    def _details(self, start: float, end: float) -> dict[str, Any]:
        details = dict(self._static_details)
        details["task_transitions"] = {"execution-start": start, "execution-end": end}
        return details


def _always() -> bool:
    return True


def _load_failure_text(task_id: str, exc: Exception) -> str:
    """Why a task could not even be started, as one clear paragraph plus the cause.

    The cause is usually a serialization mismatch (another Python or dill version, a module the
    endpoint lacks), so the exception text is kept: it names the strategy and the missing piece.
    """
    cause = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return (
        f"Task {task_id} could not be started: its task buffer could not be unpacked and "
        f"deserialized into (function, args, kwargs).\n{cause}\n"
    )
