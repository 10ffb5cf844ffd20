"""The vocabulary both sides of the wire share: task states, ids, task buffers, result documents.

The SDK, the service and the endpoint agent each speak about the same few things: which state
a task is in, what a valid id looks like, how a task's function and arguments are packed into
one buffer, and what a task's result document says when it succeeded or was lost. Each of those
is written once, here, and imported by whichever side needs it. Nothing in this package does
I/O or imports the SDK, the service or the endpoint.

::

    states        TaskState (values are the wire strings), TERMINAL_STATES
    ids           canonical_uuid / require_uuid: the one UUID parser
    task_buffer   the 3-buffer task layout (function, args, kwargs) and its 2-buffer payload
    results       success / failure result documents and the lost-task texts
    agent         the private HTTP protocol between the embedded service and its agents
"""

from __future__ import annotations

from globus_compute.protocol.ids import canonical_uuid, require_uuid
from globus_compute.protocol.states import TERMINAL_STATES, TaskState

__all__ = ["TERMINAL_STATES", "TaskState", "canonical_uuid", "require_uuid"]
