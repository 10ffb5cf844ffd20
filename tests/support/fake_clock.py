"""A clock for single-threaded tests of code that waits: waiting advances it, nothing sleeps.

``RequestBudget(rate, clock=clock, wait=clock.wait)`` then computes its pacing in fake time.
"""

from __future__ import annotations

import threading


class FakeClock:
    """Monotonic seconds that move only when someone waits (or a test sets ``now``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def wait(self, _cv: threading.Condition, seconds: float) -> None:
        """Stands in for ``Condition.wait(seconds)``: the time passes at once."""
        self.now += seconds
