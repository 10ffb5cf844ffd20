"""How a task's function and arguments travel: packed buffers of serialized strings.

A submit carries, per task, a *payload* of two packed buffers (args, kwargs); the service
stores the function's code once and, when an endpoint claims the task, hands out the *task
buffer*: the function's packed buffer followed by the payload, three buffers in all (the
reference endpoint's layout). Source registered with ``serialized: false`` is made a function
buffer here, as the reference ``PureSourceTextInspect`` string, text that is never executed by
the service.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from globus_compute.serialize.packing import pack_buffers, unpack_buffers

__all__ = ["TaskBuffer", "function_buffer", "pack_payload", "task_buffer", "unpack_task_buffer"]

#: The buffers of a claimed task, in order.
TASK_BUFFER_PARTS = ("function", "args", "kwargs")

#: The reference header of ``PureSourceTextInspect``: what plain source becomes.
_SOURCE_HEADER = "st"


class TaskBuffer(NamedTuple):
    """The three serialized strings of a claimed task."""

    function: str
    args: str
    kwargs: str


def pack_payload(args: str, kwargs: str) -> str:
    """One task's submitted payload from its serialized args and kwargs."""
    return pack_buffers([args, kwargs])


def function_buffer(name: str, code: str, serialized: bool) -> str:
    """The packed function buffer an endpoint unpacks, from a stored registration.

    Args:
        name: The registered ``function_name`` (the entry point of plain source).
        code: The stored ``function_code``: a packed serialized function, or plain source.
        serialized: False for plain source (``Client.register_source_code``).
    """
    if serialized:
        return code
    return pack_buffers([f"{_SOURCE_HEADER}\n{name}:{code}"])


def task_buffer(function: str, payload: str) -> str:
    """The claimed task's buffer: the packed function buffer followed by the payload."""
    return function + payload


def unpack_task_buffer(packed: str) -> TaskBuffer:
    """Split a task buffer into its three serialized strings.

    Raises:
        ValueError: The packing is malformed or holds another number of buffers.
    """
    buffers: list[Any] = unpack_buffers(packed)
    if len(buffers) != len(TASK_BUFFER_PARTS):
        raise ValueError(
            f"expected {len(TASK_BUFFER_PARTS)} packed buffers (function, args, kwargs), "
            f"found {len(buffers)}"
        )
    return TaskBuffer(*buffers)
