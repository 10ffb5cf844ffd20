"""How much work the agent claims: enough to keep every worker busy, not so much it hoards.

Before each claim the agent asks its :class:`ClaimPolicy` how many tasks to ask for, given the
engine's worker slots and the tasks it holds unfinished (``outstanding``). The policy allows at
most::

    limit = max(per_worker * worker_slots, throughput * horizon_s)

tasks outstanding, so slow tasks are not hoarded from other endpoints (a few per worker) while
floods of no-op tasks still travel in large batches (about ``horizon_s`` of measured work).
While the engine is busy it waits until a quarter of the limit is free, rather than claiming a
task or two per request.

Throughput is the agent's measured rate of finished tasks: an exponential moving average,
sampled at most every ``sample_s`` from a counter the engine's result deliveries advance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["ClaimPolicy"]

#: Tasks each worker may have claimed ahead however slow they are.
CLAIM_PER_WORKER = 4
#: Seconds of measured throughput the agent may hold claimed, for floods of short tasks.
CLAIM_HORIZON_S = 0.25
#: Shortest period over which a throughput sample is taken (shorter ones are noise).
THROUGHPUT_SAMPLE_S = 0.1
#: Weight of the newest sample in the moving average.
THROUGHPUT_WEIGHT = 0.5


class ClaimPolicy:
    """Decides the size of the next claim from worker slots, outstanding tasks and throughput.

    Args:
        per_worker: Tasks each worker slot may have outstanding, however slow they are.
        horizon_s: Seconds of measured throughput that may be outstanding.
        sample_s: Shortest throughput sampling period, seconds.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        *,
        per_worker: int = CLAIM_PER_WORKER,
        horizon_s: float = CLAIM_HORIZON_S,
        sample_s: float = THROUGHPUT_SAMPLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_worker < 1 or horizon_s < 0 or sample_s <= 0:
            raise ValueError("per_worker must be >= 1, horizon_s >= 0 and sample_s > 0")
        self.per_worker = per_worker
        self.horizon_s = horizon_s
        self.sample_s = sample_s
        self._clock = clock
        self._lock = threading.Lock()  # completions arrive from engine threads
        self._completed = 0
        self._sampled_count = 0
        self._sampled_at = clock()
        self._throughput = 0.0

    @property
    def throughput(self) -> float:
        """The measured rate of finished tasks, per second."""
        return self._throughput

    def record_completed(self, count: int) -> None:
        """Count ``count`` more finished tasks (called once per result batch)."""
        with self._lock:
            self._completed += count

    def limit(self, worker_slots: int) -> int:
        """Most tasks that may be outstanding for ``worker_slots`` workers."""
        return max(self.per_worker * worker_slots, int(self._throughput * self.horizon_s))

    def claim_size(self, worker_slots: int, outstanding: int) -> int:
        """How many tasks to claim now; 0 means wait until some finish.

        Args:
            worker_slots: The workers to claim for (``Engine.worker_slots()``).
            outstanding: Tasks claimed and not yet finished.
        """
        self._sample()
        limit = self.limit(worker_slots)
        spare = limit - outstanding
        if outstanding and spare < limit // 4:
            return 0
        return max(0, spare)

    def _sample(self) -> None:
        now = self._clock()
        elapsed = now - self._sampled_at
        if elapsed < self.sample_s:
            return
        with self._lock:
            completed = self._completed
        rate = (completed - self._sampled_count) / elapsed
        self._throughput = (1 - THROUGHPUT_WEIGHT) * self._throughput + THROUGHPUT_WEIGHT * rate
        self._sampled_count, self._sampled_at = completed, now
