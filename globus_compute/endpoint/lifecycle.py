"""The one lifecycle of the agent and of every engine: started once, stopped once.

::

    NEW ──begin_start()──► STARTING ──started()──► RUNNING
     │                        │                       │
     └────────────────────────┴───────stop()──────────┴──► STOPPED

``stop()`` is allowed from every state and is idempotent: it answers the state it left, so the
owner tears down exactly what it had built (nothing for ``NEW``, the parts that exist for a start
that failed halfway in ``STARTING``). Restarting is not supported: a second ``begin_start`` raises.

A :class:`Lifecycle` has no lock of its own. Its owner calls it under the lock that also guards
what the state protects (the pending queue, the counters), so that "running?" and "queue this
task" are one atomic step against a concurrent shutdown.
"""

from __future__ import annotations

import enum

__all__ = ["Lifecycle", "State"]


class State(enum.Enum):
    """Where a component is in its life."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class Lifecycle:
    """The state of one component, with the errors every engine raises for misuse.

    Args:
        what: The component as the error messages name it, e.g. ``"the process engine"``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.state = State.NEW

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    def begin_start(self) -> None:
        """Move from ``NEW`` to ``STARTING``.

        Raises:
            RuntimeError: If the component was started (or stopped) before.
        """
        if self.state is not State.NEW:
            raise RuntimeError(f"{self.what} can be started once (it is {self.state.value})")
        self.state = State.STARTING

    def started(self) -> None:
        """Move from ``STARTING`` to ``RUNNING``, unless a stop came first.

        Raises:
            RuntimeError: If the component was stopped while it was starting.
        """
        if self.state is not State.STARTING:
            raise RuntimeError(f"{self.what} was stopped while starting")
        self.state = State.RUNNING

    def require_running(self) -> None:
        """Raise unless the component is ``RUNNING``.

        Raises:
            RuntimeError: If it is not (yet, or any more) running.
        """
        if self.state is not State.RUNNING:
            raise RuntimeError(f"{self.what} is not running (it is {self.state.value})")

    def stop(self) -> State:
        """Move to ``STOPPED``; returns the state it was in (``STOPPED``: nothing to do)."""
        previous, self.state = self.state, State.STOPPED
        return previous
