"""``EndpointWatch``: work waiting on an offline endpoint is said once, and readable."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from globus_compute.client.request_budget import RequestBudget, RequestRate
from globus_compute.executor.endpoint_watch import EndpointWatch, describe_wait
from tests.support.fake_clock import FakeClock

pytestmark = pytest.mark.timeout(30)

EP = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"


class StatusClient:
    """Answers ``get_endpoint_status`` from a dict a test changes; counts the calls."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.fail = False

    def get_endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("service down")
        return self.statuses[endpoint_id]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_offline_endpoint_is_warned_about_once_with_its_offline_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, clock = StatusClient(), Clock()
    client.statuses[EP] = {"status": "offline", "last_heartbeat": 1_700_000_000.0}
    watch = EndpointWatch(client, check_every_s=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="globus_compute.executor.endpoint_watch"):
        for _ in range(3):
            assert watch.check([EP]) == {EP: 1_700_000_000.0}
            clock.now += 10
        assert client.calls == 3
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert watch.describe() == [describe_wait(EP, 1_700_000_000.0)]
        assert "waiting for endpoint" in watch.describe()[0]
        client.statuses[EP] = {"status": "online"}
        assert watch.check([EP]) == {}
        assert caplog.records[-1].levelname == "INFO" and "back online" in caplog.text
        clock.now += 10
        client.statuses[EP] = {"status": "offline", "last_heartbeat": 1_700_000_500.0}
        assert watch.check([EP]) == {EP: 1_700_000_500.0}  # a new spell: said again
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING"]


def test_checks_are_paced_and_endpoints_without_work_are_forgotten() -> None:
    client, clock = StatusClient(), Clock()
    client.statuses = {EP: {"status": "offline"}, OTHER: {"status": "online"}}
    watch = EndpointWatch(client, check_every_s=30, clock=clock, wall_clock=lambda: 42.0)
    assert watch.check([EP, OTHER]) == {EP: 42.0}  # the hosted service gives no time
    clock.now += 5
    watch.check([EP, OTHER])
    assert client.calls == 2  # not due again yet
    assert watch.check([OTHER]) == {}  # nothing waits on EP any more


def test_a_failed_status_request_keeps_what_was_known() -> None:
    client, clock = StatusClient(), Clock()
    client.statuses[EP] = {"status": "offline", "last_heartbeat": 7.0}
    watch = EndpointWatch(client, check_every_s=0, clock=clock)
    assert watch.check([EP]) == {EP: 7.0}
    client.fail = True
    assert watch.check([EP]) == {EP: 7.0}


def test_a_finished_task_of_an_offline_endpoint_has_it_asked_again_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its agent is back, most likely: said at once, even when no other work waits there."""
    client, clock = StatusClient(), Clock()
    client.statuses[EP] = {"status": "offline", "last_heartbeat": 5.0}
    watch = EndpointWatch(client, check_every_s=3600, clock=clock)
    assert watch.check([EP]) == {EP: 5.0}
    client.statuses[EP] = {"status": "online"}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="globus_compute.executor.endpoint_watch"):
        assert watch.check([], finished=[EP]) == {}
    assert client.calls == 2
    assert [r.getMessage() for r in caplog.records] == [f"endpoint {EP} is back online"]
    assert watch.check([], finished=[EP]) == {} and client.calls == 2  # forgotten: not asked


def test_a_finished_task_of_an_online_endpoint_costs_no_request() -> None:
    client, clock = StatusClient(), Clock()
    client.statuses[EP] = {"status": "online"}
    watch = EndpointWatch(client, check_every_s=3600, clock=clock)
    watch.check([EP])
    watch.check([EP], finished=[EP])
    assert client.calls == 1


def test_with_a_request_budget_only_spare_turns_are_spent_one_per_check() -> None:
    """The hosted budget is shared with submits and polls: status requests never crowd them."""
    clock = FakeClock()
    budget = RequestBudget(RequestRate(20, 10.0), clock=clock, wait=clock.wait)
    client = StatusClient()
    client.statuses = {EP: {"status": "offline"}, OTHER: {"status": "offline"}}
    watch = EndpointWatch(client, check_every_s=30, budget=budget, clock=clock)
    assert len(watch.check([EP, OTHER])) == 1
    assert client.calls == 1  # two due, one asked: one per check
    for _ in range(11):  # submits and polls spend the bucket below half its burst
        budget.take()
    watch.check([EP, OTHER])
    assert client.calls == 1  # the other endpoint stays due
    clock.now += 10  # the bucket refills
    watch.check([EP, OTHER])
    assert client.calls == 2 and watch.waiting_on().keys() == {EP, OTHER}
    watch.check([EP, OTHER])
    assert client.calls == 2  # both were asked within check_every_s


def test_a_client_without_endpoint_status_is_never_asked() -> None:
    watch = EndpointWatch(object(), check_every_s=0)
    assert watch.check([EP], finished=[EP]) == {} and watch.requests == 0


def test_an_unreadable_status_changes_nothing() -> None:
    client, clock = StatusClient(), Clock()
    client.statuses[EP] = {"status": "offline", "last_heartbeat": 7.0}
    watch = EndpointWatch(client, check_every_s=0, clock=clock)
    watch.check([EP])
    client.statuses[EP] = ["not", "a", "status"]  # type: ignore[assignment]
    assert watch.check([EP]) == {EP: 7.0}
