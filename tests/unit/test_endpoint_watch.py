"""``EndpointWatch``: work waiting on an offline endpoint is said once, and readable."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from globus_compute.endpoint_watch import EndpointWatch

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
    with caplog.at_level(logging.INFO, logger="globus_compute.endpoint_watch"):
        for _ in range(3):
            assert watch.check([EP]) == {EP: 1_700_000_000.0}
            clock.now += 10
        assert client.calls == 3
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert watch.describe() == [watch.describe_one(EP, 1_700_000_000.0)]
        assert "waiting for endpoint" in watch.describe()[0]
        client.statuses[EP] = {"status": "online"}
        assert watch.check([EP]) == {}
        assert caplog.records[-1].levelname == "INFO" and "online again" in caplog.text
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
