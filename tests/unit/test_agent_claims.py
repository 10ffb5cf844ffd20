"""How much work the agent claims, decided from its engine alone (no service, no threads)."""

from __future__ import annotations

from globus_compute.protocol.agent import ClaimedTask, WorkerStatus
from globus_compute.endpoint.agent import CLAIM_PER_WORKER, Agent
from globus_compute.endpoint.engines.base import Engine, EngineContext


class StubEngine(Engine):
    """An engine whose status and worker slots the test sets."""

    name = "stub"

    def __init__(self, connected: int, slots: int | None = None, outstanding: int = 0) -> None:
        self.connected = connected
        self.slots = slots
        self.outstanding = outstanding

    def start(self, context: EngineContext) -> None:
        pass

    def submit(self, tasks: list[ClaimedTask]) -> None:
        pass

    def status(self) -> WorkerStatus:
        return {
            "total_workers": self.connected,
            "idle_workers": self.connected,
            "pending_tasks": self.outstanding,
            "outstanding_tasks": self.outstanding,
            "managers": 1 if self.connected else 0,
        }

    def worker_slots(self) -> int:
        return self.connected if self.slots is None else self.slots

    def shutdown(self, timeout: float = 10.0) -> None:
        pass


def make_agent(engine: Engine) -> Agent:
    return Agent("http://127.0.0.1:9", "token", "stub", engine)


def test_claims_for_connected_workers_by_default() -> None:
    assert make_agent(StubEngine(connected=3))._spare_capacity() == CLAIM_PER_WORKER * 3


def test_engine_without_connected_workers_still_gets_work_for_its_slots() -> None:
    """Regression: claims were sized by connected workers, so a Parsl endpoint whose blocks
    start on demand (init_blocks 0) never claimed the task that would start one."""
    engine = StubEngine(connected=0, slots=2)
    assert make_agent(engine)._spare_capacity() == CLAIM_PER_WORKER * 2


def test_busy_engine_waits_for_a_worthwhile_batch() -> None:
    limit = CLAIM_PER_WORKER * 2
    almost_full = StubEngine(connected=2, outstanding=limit - 1)
    assert make_agent(almost_full)._spare_capacity() == 0
    half_full = StubEngine(connected=2, outstanding=limit // 2)
    assert make_agent(half_full)._spare_capacity() == limit - limit // 2
