"""The states of a task, as the service's task documents spell them.

The hosted service reports more pending states than the embedded one uses (an endpoint may
say ``waiting-for-nodes`` while a batch job starts); the SDK treats any state outside
:data:`TERMINAL_STATES` as pending, so unknown pending states from a newer service are safe.
"""

from __future__ import annotations

from enum import Enum


class TaskState(str, Enum):
    """A task's ``status`` field; each value is the exact wire string."""

    #: Accepted and durable; no endpoint has claimed it yet.
    WAITING_FOR_EP = "waiting-for-ep"
    #: Claimed and leased to an endpoint.
    RUNNING = "running"
    #: Finished with a serialized result.
    SUCCESS = "success"
    #: Finished with traceback (or failure reason) text.
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        """True for the two states a task never leaves."""
        return self in TERMINAL_STATES


#: States a task never leaves; every other state is pending.
TERMINAL_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILED})


def is_terminal(status: object) -> bool:
    """Whether a wire ``status`` string (any case) names a terminal state."""
    return isinstance(status, str) and status.lower() in _TERMINAL_VALUES


_TERMINAL_VALUES = frozenset(state.value for state in TERMINAL_STATES)


def sql_list(states: frozenset[TaskState] | tuple[TaskState, ...]) -> str:
    """``'a', 'b'`` for an SQL ``IN (...)`` clause; the values are our own constants."""
    return ", ".join(f"'{state.value}'" for state in sorted(states, key=lambda s: s.value))
