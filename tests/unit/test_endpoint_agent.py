"""The agent's loops, driven for real (thread engine) against an in-memory service, no HTTP.

The service side is ``tests.support.fake_transport``; the agent under test is the real one,
with its three threads, claim policy and shutdown sequence.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from globus_compute.endpoint.agent import Agent
from globus_compute.endpoint.engines.base import Engine, EngineContext
from globus_compute.endpoint.engines.thread import ThreadEngine
from globus_compute.errors import ServiceRefused
from globus_compute.serialize import ComputeSerializer
from tests.support.fake_transport import ENDPOINT_ID, FakeAgentService, claimed_task

pytestmark = pytest.mark.timeout(60)

SER = ComputeSerializer()

#: Gates that tasks wait at, by name; the thread engine runs tasks in this process, and dill
#: ships module-level functions by reference, so a task sees the test's Event.
GATES: dict[str, threading.Event] = {}


def square(x: int) -> int:
    return x * x


def held_at_gate(name: str) -> str:
    assert GATES[name].wait(30), "the test never opened the gate"
    return "released"


def big_text(size: int) -> str:
    return "x" * size


@pytest.fixture
def gate():
    """A gate tasks wait at; always opened at the end so no engine thread is left waiting."""
    names: list[str] = []

    def make(name: str) -> threading.Event:
        names.append(name)
        GATES[name] = threading.Event()
        return GATES[name]

    yield make
    for name in names:
        GATES.pop(name).set()


def make_agent(service: FakeAgentService, engine: Engine | None = None, **settings: Any) -> Agent:
    settings.setdefault("heartbeat_s", 0.05)
    settings.setdefault("claim_wait_s", 0.05)
    return Agent(
        "http://unused.invalid",
        "unused-token",
        "fake",
        engine or ThreadEngine(2),
        transport=service.transport,
        **settings,
    )


def agent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("endpoint-")]


def reported(service: FakeAgentService, *task_ids: str):
    return lambda: all(t in service.results for t in task_ids)


def assert_next_heartbeat_holds(service: FakeAgentService, held: list[str]) -> None:
    """A heartbeat sent from now on (within seconds) lists exactly ``held``."""
    seen = len(service.heartbeats)
    service.wait_for(
        lambda: any(sorted(h or []) == sorted(held) for _, h in service.heartbeats[seen:]),
        f"a heartbeat holding {held}",
        timeout=5,
    )


def test_claimed_tasks_run_and_every_result_is_reported_once() -> None:
    service = FakeAgentService()
    service.add_tasks([claimed_task(f"t{i}", square, i) for i in range(200)])
    agent = make_agent(service)
    try:
        assert agent.start() == ENDPOINT_ID
        service.wait_for(lambda: len(service.results) == 200, "200 results")
        assert {SER.deserialize(service.results[f"t{i}"]["result"]) for i in range(200)} == {
            i * i for i in range(200)
        }
        assert all(r["details"]["endpoint_id"] == ENDPOINT_ID for r in service.results.values())
        posted = [r["task_id"] for post in service.accepted_posts for r in post]
        assert sorted(posted) == sorted(service.results)  # each exactly once
        # The results were accepted, so later heartbeats stop renewing those leases.
        assert_next_heartbeat_holds(service, [])
    finally:
        agent.stop()
        agent.shutdown()
    registration = service.registrations[0]
    assert registration["name"] == "fake"
    assert registration["metadata"]["engine"] == "thread"
    assert registration["metadata"]["workers"] == 2
    assert agent_threads() == []
    assert service.transports and all(t.closed for t in service.transports)


def test_heartbeats_list_the_tasks_the_agent_holds(gate) -> None:
    opened = gate("held")
    service = FakeAgentService()
    service.add_tasks([claimed_task("slow", held_at_gate, "held")])
    agent = make_agent(service)
    agent.start()
    try:
        service.wait_for(
            lambda: any(held == ["slow"] for _, held in service.heartbeats), "a heartbeat with it"
        )
        opened.set()
        service.wait_for(reported(service, "slow"), "its result")
        assert_next_heartbeat_holds(service, [])
    finally:
        agent.stop()
        agent.shutdown()


def wait_until_idle(engine: Engine) -> None:
    """Poll (with a deadline) until the engine has handed every result to the agent."""
    deadline = time.monotonic() + 30
    while engine.status()["outstanding_tasks"]:
        assert time.monotonic() < deadline, "the tasks never finished"
        threading.Event().wait(0.01)


def test_a_batch_too_large_is_split_and_the_refused_result_replaced_by_a_failure(gate) -> None:
    """A 413 batch is split until the offending result is alone; that one is replaced by a
    small failed result naming the refusal, and the others are delivered as they were."""
    opened = gate("split")
    service = FakeAgentService()
    service.refuse_results = lambda batch: (
        413 if any(r["task_id"] == "big" and r["status"] == "success" for r in batch) else None
    )
    tasks = [claimed_task("a", held_at_gate, "split"), claimed_task("big", big_text, 1000)]
    tasks += [claimed_task("b", square, 2), claimed_task("c", square, 3)]
    service.add_tasks(tasks)
    engine = ThreadEngine(1)  # runs them in order
    agent = make_agent(service, engine)
    agent.start()
    try:
        service.wait_for(lambda: service.queued == 0, "the claim")
        # Hold every result back until all four finished, so "big" shares a batch.
        service.unreachable.set()
        opened.set()
        wait_until_idle(engine)
        service.unreachable.clear()
        service.wait_for(reported(service, "a", "big", "b", "c"), "four results")
    finally:
        agent.stop()
        agent.shutdown()
    big = service.results["big"]
    assert big["status"] == "failed"
    assert big["exception"].startswith(
        "The endpoint could not report this task's result; the service said: HTTP 413"
    )
    assert big["details"]["endpoint_id"] == ENDPOINT_ID
    assert SER.deserialize(service.results["a"]["result"]) == "released"
    assert [SER.deserialize(service.results[t]["result"]) for t in "bc"] == [4, 9]
    assert any(len(batch) > 1 for _, batch in service.refused_posts)  # it was split...
    assert len(service.refused_posts[-1][1]) == 1  # ...down to the one result


def test_a_result_the_service_calls_invalid_is_replaced_by_a_failure() -> None:
    service = FakeAgentService()
    service.refuse_results = lambda batch: 400 if batch[0]["status"] == "success" else None
    service.add_tasks([claimed_task("bad", square, 4)])
    agent = make_agent(service)
    agent.start()
    try:
        service.wait_for(reported(service, "bad"), "the replacement")
    finally:
        agent.stop()
        agent.shutdown()
    result = service.results["bad"]
    assert result["status"] == "failed"
    assert "could not report this task's result; the service said: HTTP 400" in result["exception"]


def test_a_result_refused_for_another_reason_is_dropped_and_the_agent_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FakeAgentService()
    service.refuse_results = lambda batch: 403 if any(r["task_id"] == "x" for r in batch) else None
    service.add_tasks([claimed_task("x", square, 5)])
    agent = make_agent(service)
    agent.start()
    try:
        service.wait_for(lambda: bool(service.refused_posts), "the refusal")
        service.add_tasks([claimed_task("y", square, 6)])
        service.wait_for(reported(service, "y"), "the next result")
    finally:
        agent.stop()
        agent.shutdown()
    assert "x" not in service.results
    assert "dropped" in caplog.text


def test_a_heartbeat_asking_to_stop_finishes_claimed_tasks_then_exits(gate) -> None:
    opened = gate("stop")
    service = FakeAgentService()
    service.add_tasks([claimed_task("running", held_at_gate, "stop")])
    agent = make_agent(service, drain_timeout_s=30)
    runner = threading.Thread(target=agent.run, name="test-agent-run")
    runner.start()
    try:
        service.wait_for(lambda: service.queued == 0, "the claim")
        service.stop_requested = True
        assert agent.wait(10), "the heartbeat's stop was not noticed"
        service.wait_for(
            lambda: not any(t.name == "endpoint-claimer" for t in threading.enumerate()),
            "the claimer to end",
        )
        # Draining: the agent still holds the task and renews its lease.
        seen = len(service.heartbeats)
        service.wait_for(
            lambda: len(service.heartbeats) > seen and service.heartbeats[-1][1] == ["running"],
            "a heartbeat while draining",
        )
        assert "running" not in service.results
        opened.set()  # graceful: the claimed task is let finish, and its result reported
        runner.join(30)
        assert not runner.is_alive()
    finally:
        agent.stop(force=True)
        runner.join(30)
    assert SER.deserialize(service.results["running"]["result"]) == "released"
    assert agent_threads() == []


def test_a_refused_heartbeat_stops_the_agent() -> None:
    service = FakeAgentService()
    agent = make_agent(service)
    agent.start()
    try:
        service.refuse_heartbeat = 401
        assert agent.wait(10)
    finally:
        agent.shutdown()
    assert agent_threads() == []


def test_a_forced_stop_does_not_wait_for_running_tasks(gate) -> None:
    gate("forced")
    service = FakeAgentService()
    service.add_tasks([claimed_task("stuck", held_at_gate, "forced")])
    agent = make_agent(service, drain_timeout_s=60)
    agent.start()
    service.wait_for(lambda: service.queued == 0, "the claim")
    started = time.monotonic()
    agent.stop(force=True)
    agent.shutdown()
    assert time.monotonic() - started < 20  # far below the drain timeout
    assert "stuck" not in service.results
    assert agent_threads() == []


def test_results_for_an_unreachable_service_are_given_up_after_the_flush_timeout(
    gate, caplog: pytest.LogCaptureFixture
) -> None:
    opened = gate("orphan")
    service = FakeAgentService()
    service.add_tasks([claimed_task("orphan", held_at_gate, "orphan")])
    agent = make_agent(service, report_flush_timeout_s=0.3, drain_timeout_s=30)
    agent.start()
    service.wait_for(lambda: service.queued == 0, "the claim")
    service.unreachable.set()
    opened.set()
    agent.stop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        agent.shutdown()
    assert time.monotonic() - started < 20
    assert service.results == {}
    assert "giving up" in caplog.text
    assert "stopped with 1 results unreported" in caplog.text
    assert agent_threads() == []


class BrokenEngine(ThreadEngine):
    """A thread engine whose start fails halfway (its pool started, then an error)."""

    name = "broken"

    def __init__(self) -> None:
        super().__init__(1)
        self.shutdowns = 0

    def start(self, context: EngineContext) -> None:
        super().start(context)
        raise RuntimeError("no workers could be started")

    def shutdown(self, timeout: float = 10.0) -> None:
        self.shutdowns += 1
        super().shutdown(timeout)


def test_shutdown_after_the_engine_failed_to_start_is_safe() -> None:
    """Regression (issue 14): shutdown of a half-started agent raised KeyError
    'endpoint-claimer', hiding the engine's own error."""
    service = FakeAgentService()
    engine = BrokenEngine()
    agent = make_agent(service, engine)
    with pytest.raises(RuntimeError, match="no workers could be started"):
        agent.start()
    agent.shutdown()
    agent.shutdown()  # idempotent
    assert engine.shutdowns == 1
    assert engine.status()["outstanding_tasks"] == 0
    assert not [t for t in threading.enumerate() if t.name == "engine-thread-results"]
    assert agent_threads() == []
    with pytest.raises(RuntimeError, match="can be started once"):
        agent.start()


def test_shutdown_after_a_refused_registration_is_safe() -> None:
    class Refusing(FakeAgentService):
        def _register(self, name: str, metadata: dict, display_name: str | None) -> str:
            raise ServiceRefused(401, '{"code": "UNAUTHORIZED"}')

    engine = ThreadEngine(1)
    agent = make_agent(Refusing(), engine)
    with pytest.raises(ServiceRefused) as refused:
        agent.start()
    assert refused.value.http_status == 401
    agent.shutdown()
    with pytest.raises(RuntimeError, match="the thread engine can be started once"):
        engine.start(EngineContext(ENDPOINT_ID, lambda batch: None))


def test_shutdown_of_an_agent_never_started_stops_its_engine() -> None:
    engine = ThreadEngine(1)
    agent = make_agent(FakeAgentService(), engine)
    agent.shutdown()
    with pytest.raises(RuntimeError, match="not running"):
        engine.submit([claimed_task("late", square, 1)])


# -- who owns a task: start, drop, leases in doubt, goodbye ----------------------------------

STARTED: list[str] = []


def note_start(name: str) -> str:
    STARTED.append(name)
    return name


def test_the_first_heartbeat_takes_over_and_the_last_hands_back_what_is_held(gate) -> None:
    gate("goodbye")
    service = FakeAgentService()
    service.add_tasks([claimed_task("stuck", held_at_gate, "goodbye")])
    agent = make_agent(service, drain_timeout_s=0.2)
    agent.start()
    try:
        assert service.phases[0] == "starting" and service.heartbeats[0][1] == []
        service.wait_for(lambda: service.queued == 0, "the claim")
    finally:
        agent.stop()
        agent.shutdown()
    # The drain ran out: the goodbye hands the unfinished task back to the service at once.
    assert service.phases[-1] == "stopping"
    assert service.heartbeats[-1][1] == ["stuck"]
    assert service.phases.count("stopping") == 1 and service.phases.count("starting") == 1
    assert agent_threads() == []


def test_held_tasks_the_service_already_resolved_are_dropped_before_they_start(gate) -> None:
    """Regression (issue 14, item 9): tasks the service failed with EndpointLost while the
    agent was out of touch still ran afterwards."""
    opened = gate("busy")
    STARTED.clear()
    service = FakeAgentService()
    service.add_tasks(
        [
            claimed_task("busy", held_at_gate, "busy"),
            claimed_task("resolved", note_start, "resolved"),
            claimed_task("kept", note_start, "kept"),
        ]
    )
    engine = ThreadEngine(1)  # "busy" holds the one worker; the others wait in its queue
    agent = make_agent(service, engine)
    agent.start()
    try:
        service.wait_for(lambda: service.queued == 0, "the claim")
        service.resolved.add("resolved")
        assert_next_heartbeat_holds(service, ["busy", "kept"])  # dropped, no longer held
        opened.set()
        service.wait_for(reported(service, "busy", "kept"), "the other results")
        wait_until_idle(engine)
    finally:
        agent.stop()
        agent.shutdown()
    assert STARTED == ["kept"]
    assert "resolved" not in service.results


def test_no_task_starts_while_the_service_is_out_of_touch_past_the_lease(gate) -> None:
    opened = gate("first")
    STARTED.clear()
    service = FakeAgentService(lease_s=0.3)
    service.add_tasks([claimed_task("first", held_at_gate, "first")])
    service.add_tasks([claimed_task("second", note_start, "second")])
    engine = ThreadEngine(1)
    agent = make_agent(service, engine)
    agent.start()
    try:
        service.wait_for(lambda: service.queued == 0, "the claims")
        service.unreachable.set()
        seen = len(service.heartbeats)
        # Out of touch for more than a lease: the service may have given the tasks away.
        threading.Event().wait(3 * service.lease_s)
        opened.set()
        threading.Event().wait(3 * service.lease_s)  # a bounded chance to (wrongly) start it
        assert STARTED == [] and len(service.heartbeats) == seen
        service.unreachable.clear()
        service.wait_for(reported(service, "first", "second"), "both results")
    finally:
        agent.stop()
        agent.shutdown()
    assert STARTED == ["second"]


def test_a_batch_refused_because_of_one_result_fails_only_that_task() -> None:
    """Regression (issue 14, item 5): a 400 for one result replaced the whole batch."""
    service = FakeAgentService()
    service.refuse_results = lambda batch: (
        400 if any(r["task_id"] == "bad" and r["status"] == "success" for r in batch) else None
    )
    service.unreachable.set()  # results accumulate into one batch meanwhile
    service.add_tasks([claimed_task(t, square, 2) for t in ("a", "bad", "b", "c")])
    engine = ThreadEngine(2)
    agent = make_agent(service, engine)
    starter = threading.Thread(target=agent.start, name="test-agent-start")
    service.unreachable.clear()
    starter.start()
    starter.join(30)
    try:
        service.wait_for(reported(service, "a", "bad", "b", "c"), "four results")
    finally:
        agent.stop()
        agent.shutdown()
    assert service.results["bad"]["status"] == "failed"
    assert "HTTP 400" in service.results["bad"]["exception"]
    assert all(service.results[t]["status"] == "success" for t in "abc")


def test_a_task_claimed_again_while_still_held_runs_once(gate) -> None:
    opened = gate("again")
    service = FakeAgentService()
    service.add_tasks([claimed_task("again", held_at_gate, "again")])
    engine = ThreadEngine(2)
    agent = make_agent(service, engine)
    agent.start()
    try:
        service.wait_for(lambda: service.queued == 0, "the claim")
        # The service re-queued it (out of touch) and hands it out again, attempt 2.
        service.add_tasks([claimed_task("again", held_at_gate, "again", attempt=2)])
        service.wait_for(lambda: service.queued == 0, "the second claim")
        assert engine.status()["outstanding_tasks"] == 1
        opened.set()
        service.wait_for(reported(service, "again"), "its result")
    finally:
        agent.stop()
        agent.shutdown()
    posted = [r["task_id"] for post in service.accepted_posts for r in post]
    assert posted == ["again"]
