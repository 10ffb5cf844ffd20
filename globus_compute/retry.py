"""The one retry schedule of our own loops: capped exponential backoff with jitter.

Requests the Client makes are retried by globus-sdk's transport (its ``RetryConfig``, see
``client/rest.py``). Everything that retries *above* one request, the Executor's submitter
resending a batch to a restarting service, its result poller after a failed poll, the endpoint
agent's calls, waits according to a :class:`Backoff`, so the policy is written once and each
loop only says how patient it is.

Jitter spreads the retries of many clients that failed together (a service restart) instead of
having them all return in the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Delays before retry ``1, 2, 3, ...``: ``first_s * factor**(n-1)``, capped, with jitter.

    Attributes:
        first_s: Delay before the first retry, seconds.
        max_s: Longest delay, seconds.
        factor: Growth per retry.
        jitter: Fraction of each delay that is random: a delay ``d`` becomes a uniform draw
            from ``[d * (1 - jitter), d]``.
        rand: Source of randomness in [0, 1) (injectable for tests).
    """

    first_s: float = 1.0
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.25
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.max_s < self.first_s or self.factor < 1:
            raise ValueError(f"invalid backoff schedule: {self!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        exponent = max(0, retry - 1)
        # Compare in the exponent so a long outage never overflows a float.
        if self.first_s == 0:
            return 0.0
        capped = self.max_s
        if exponent < 64 and self.first_s * self.factor**exponent < self.max_s:
            capped = self.first_s * self.factor**exponent
        return capped * (1 - self.jitter * self.rand())
