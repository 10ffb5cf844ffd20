"""Client-side limit on submit calls, so an Executor stays under the hosted service's budget.

The hosted Globus Compute service allows 20 requests per 10 s per client (submits and result
polls together) and answers 429 beyond that. A program that submits at "just the right cadence"
can produce a stream of one-task batches and spend that budget on tiny requests (GH#1662). The
reference Executor's answer, kept here: up to ``limit`` *non-full* submit calls in any
``window_s`` seconds; after that, wait about ``window_s / limit`` seconds (plus up to one second
of jitter) before the next call, while more tasks pile up in the queue. Calls that carry a full
batch are not counted: they are already the efficient case.

The reference compares the batch length with ``api_burst_limit`` rather than ``batch_size``
when deciding "full"; its changelog describes the ``batch_size`` rule, which is what we do.

The embedded service on a loopback address has no such budget, so the Executor turns this off
there unless asked (``api_burst_limit=<int>``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

__all__ = ["BurstLimiter", "burst_limiter_for", "clamp_burst_limit", "clamp_burst_window"]

#: The reference Executor's default ``api_burst_limit``.
DEFAULT_BURST_LIMIT = 4

#: The reference Executor's bounds for ``api_burst_limit`` and ``api_burst_window_s``.
BURST_LIMIT_RANGE = (1, 8)
BURST_WINDOW_RANGE_S = (1, 32)


def clamp_burst_limit(value: int) -> int:
    """Clamp a user's ``api_burst_limit`` into the reference range [1, 8]."""
    low, high = BURST_LIMIT_RANGE
    return min(high, max(low, int(value)))


def clamp_burst_window(value: float) -> float:
    """Clamp a user's ``api_burst_window_s`` into the reference range [1, 32] seconds."""
    low, high = BURST_WINDOW_RANGE_S
    return min(high, max(low, float(value)))


def burst_limiter_for(
    api_burst_limit: int | None, window_s: float, batch_size: int, loopback: bool
) -> BurstLimiter | None:
    """The limiter an Executor should use, or None for none.

    ``api_burst_limit=None`` means automatic: the reference rule against a remote service, no
    limit on a loopback (embedded) one, which has no request budget. An int forces it on.
    """
    if api_burst_limit is None and loopback:
        return None
    limit = clamp_burst_limit(DEFAULT_BURST_LIMIT if api_burst_limit is None else api_burst_limit)
    return BurstLimiter(limit, clamp_burst_window(window_s), batch_size)


class BurstLimiter:
    """Counts recent non-full submit calls and says how long to hold the next one.

    Not thread-safe: only the submitter thread uses it.

    Args:
        limit: Non-full calls allowed per window before delays start.
        window_s: Length of the sliding window, in seconds.
        batch_size: A call with this many tasks is "full" and never counted.
        clock: Monotonic clock (injectable for tests).
        jitter: Returns the extra random delay in seconds (injectable for tests).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        batch_size: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.batch_size = batch_size
        self._clock = clock
        self._jitter = jitter
        self._recent: deque[float] = deque()

    def delay(self) -> float:
        """Seconds to wait before the next submit call (0.0 when within the burst)."""
        now = self._clock()
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        if len(self._recent) < self.limit:
            return 0.0
        spacing = self.window_s / self.limit
        return max(0.0, spacing - (now - self._recent[-1])) + self._jitter()

    def record(self, num_tasks: int) -> None:
        """Note a submit call that carried ``num_tasks`` tasks."""
        if num_tasks < self.batch_size:
            self._recent.append(self._clock())
