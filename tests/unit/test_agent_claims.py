"""How much work the agent claims: the ClaimPolicy alone (fake clock), and wired to an agent."""

from __future__ import annotations

import pytest

from globus_compute.endpoint.agent import Agent
from globus_compute.endpoint.claim_policy import CLAIM_HORIZON_S, CLAIM_PER_WORKER, ClaimPolicy
from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.protocol.agent import ClaimedTask, WorkerStatus
from tests.support.fake_transport import FakeAgentService

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 64.0  # steps below are exact binary fractions

    def __call__(self) -> float:
        return self.now


def test_claims_a_few_tasks_per_worker_slot() -> None:
    assert ClaimPolicy().claim_size(worker_slots=3, outstanding=0) == CLAIM_PER_WORKER * 3


def test_busy_engine_waits_for_a_worthwhile_batch() -> None:
    policy = ClaimPolicy()
    limit = CLAIM_PER_WORKER * 2
    assert policy.claim_size(worker_slots=2, outstanding=limit - 1) == 0
    assert policy.claim_size(worker_slots=2, outstanding=limit // 2) == limit - limit // 2


def test_full_engine_claims_nothing() -> None:
    policy = ClaimPolicy()
    assert policy.claim_size(worker_slots=2, outstanding=CLAIM_PER_WORKER * 2 + 5) == 0
    assert policy.claim_size(worker_slots=0, outstanding=0) == 0


def test_measured_throughput_raises_the_limit_for_floods_of_short_tasks() -> None:
    clock = FakeClock()
    policy = ClaimPolicy(clock=clock)
    policy.record_completed(1000)
    clock.now += 0.25  # 4,000 tasks/s over the sample; the average moves halfway there
    assert policy.claim_size(worker_slots=2, outstanding=0) == int(2000 * CLAIM_HORIZON_S)
    assert policy.throughput == 2000


def test_throughput_is_not_sampled_over_less_than_the_sample_period() -> None:
    clock = FakeClock()
    policy = ClaimPolicy(clock=clock)  # samples over 0.1 s at least
    policy.record_completed(1000)
    clock.now += 0.0625
    assert policy.claim_size(worker_slots=2, outstanding=0) == CLAIM_PER_WORKER * 2
    assert policy.throughput == 0
    clock.now += 0.0625  # the same completions, now over 0.125 s: 8,000 tasks/s
    assert policy.throughput == 0
    policy.claim_size(worker_slots=2, outstanding=0)
    assert policy.throughput == 4000


def test_throughput_decays_when_tasks_stop_finishing() -> None:
    clock = FakeClock()
    policy = ClaimPolicy(clock=clock)
    policy.record_completed(1000)
    clock.now += 0.25
    policy.claim_size(worker_slots=1, outstanding=0)
    for _ in range(3):
        clock.now += 0.25
        policy.claim_size(worker_slots=1, outstanding=0)
    assert policy.throughput == 2000 / 8
    for _ in range(20):
        clock.now += 0.25
        policy.claim_size(worker_slots=1, outstanding=0)
    assert policy.claim_size(worker_slots=1, outstanding=0) == CLAIM_PER_WORKER


def test_policy_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        ClaimPolicy(per_worker=0)
    with pytest.raises(ValueError):
        ClaimPolicy(sample_s=0)


class StubEngine(Engine):
    """An engine whose status and worker slots the test sets; it runs nothing."""

    name = "stub"

    def __init__(self, connected: int, slots: int | None = None) -> None:
        self.connected = connected
        self.slots = slots

    def start(self, context: EngineContext) -> None:
        pass

    def submit(self, tasks: list[ClaimedTask]) -> None:
        pass

    def status(self) -> WorkerStatus:
        return {
            "total_workers": self.connected,
            "idle_workers": self.connected,
            "pending_tasks": 0,
            "outstanding_tasks": 0,
            "managers": 1 if self.connected else 0,
        }

    def worker_slots(self) -> int:
        return self.connected if self.slots is None else self.slots

    def shutdown(self, timeout: float = 10.0) -> None:
        pass


@pytest.mark.parametrize(("connected", "slots"), [(3, None), (0, 2)])
def test_agent_claims_for_the_engines_worker_slots(connected: int, slots: int | None) -> None:
    """Regression: claims were sized by connected workers, so a Parsl endpoint whose blocks
    start on demand (init_blocks 0) never claimed the task that would start one."""
    service = FakeAgentService()
    engine = StubEngine(connected, slots)
    agent = Agent(
        "http://unused.invalid", "-", "stub", engine, claim_wait_s=0.05, transport=service.transport
    )
    agent.start()
    try:
        service.wait_for(lambda: bool(service.claim_sizes), "a claim")
        assert service.claim_sizes[0] == CLAIM_PER_WORKER * engine.worker_slots()
    finally:
        agent.stop()
        agent.shutdown()


def test_agent_caps_one_claim_at_claim_batch() -> None:
    service = FakeAgentService()
    agent = Agent(
        "http://unused.invalid",
        "-",
        "stub",
        StubEngine(connected=100),
        claim_batch=7,
        claim_wait_s=0.05,
        transport=service.transport,
    )
    agent.start()
    try:
        service.wait_for(lambda: bool(service.claim_sizes), "a claim")
        assert service.claim_sizes[0] == 7
    finally:
        agent.stop()
        agent.shutdown()
