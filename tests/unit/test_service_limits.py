"""Token bucket and long-poll notifier of the embedded service (no sockets)."""

from __future__ import annotations

import asyncio

from globus_compute.service.limits import TokenBucket
from globus_compute.service.notify import Notifier


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_asks_to_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == 0.5
    assert bucket.take("b") == 0.0  # buckets are per identity
    clock.now += 0.5
    assert bucket.take("a") == 0.0


def test_notifier_wakes_only_matching_keys() -> None:
    async def scenario() -> tuple[bool, bool]:
        n = Notifier()
        woken = asyncio.create_task(n.wait([("task", "t1"), ("task", "t2")], 5.0))
        other = asyncio.create_task(n.wait([("endpoint", "e")], 0.05))
        await asyncio.sleep(0)
        n.notify_tasks(["t2"])
        return await woken, await other

    assert asyncio.run(scenario()) == (True, False)


def test_notifier_close_releases_waiters_and_refuses_new_waits() -> None:
    async def scenario() -> tuple[bool, bool]:
        n = Notifier()
        waiter = asyncio.create_task(n.wait([("endpoint", "e")], 30.0))
        await asyncio.sleep(0)
        n.close()
        return await asyncio.wait_for(waiter, 2.0), await n.wait([("endpoint", "e")], 30.0)

    assert asyncio.run(scenario()) == (True, True)
