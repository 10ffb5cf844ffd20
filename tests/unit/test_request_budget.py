"""The request budget on its own: a fake clock, no threads unless a test says so."""

from __future__ import annotations

import threading

import globus_sdk
import pytest

from globus_compute.client import Client
from globus_compute.client import request_budget as rb
from globus_compute.client.request_budget import RequestBudget, RequestKind, RequestRate
from globus_compute.errors import RequestCancelled
from tests.support.fake_clock import FakeClock

pytestmark = pytest.mark.timeout(30)


def budget(requests: float = 4, period_s: float = 2.0) -> tuple[RequestBudget, FakeClock]:
    clock = FakeClock()
    return RequestBudget(RequestRate(requests, period_s), clock=clock, wait=clock.wait), clock


def test_a_burst_goes_at_once_then_requests_are_paced_at_the_rate():
    b, clock = budget(4, 2.0)  # 2 per second, burst 4
    start = clock.now
    times = []
    for _ in range(8):
        b.take()
        times.append(clock.now - start)
    assert times[:4] == [0.0] * 4
    assert times[4:] == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_a_429_holds_every_request_for_retry_after_then_refills_from_empty():
    b, clock = budget(4, 2.0)
    start = clock.now
    assert b.drain(3.0) is True  # the first 429 is worth a warning...
    assert b.drain(3.0) is False  # ...the next ones within a minute are not
    b.take()
    assert clock.now - start == pytest.approx(3.5)  # Retry-After, then one token's time
    assert b.rate_limited == 2


def test_an_unspent_turn_is_given_back_and_a_spent_one_is_not():
    b, clock = budget(2, 1.0)
    with rb.request_turn(b, RequestKind.POLL):
        pass  # nothing sent
    assert b.level() == pytest.approx(2.0)
    with rb.request_turn(b, RequestKind.POLL):
        rb.spend_turn(b)  # the request inside spends the turn...
        assert b.level() == pytest.approx(1.0)
        rb.spend_turn(b)  # ...and a second one takes a token of its own
    assert b.level() == pytest.approx(0.0)
    assert b.granted[RequestKind.POLL] == 2 and b.granted[RequestKind.OTHER] == 1
    rb.spend_turn(None)  # no budget: nothing to spend


def test_a_wait_for_a_turn_ends_when_its_cancel_event_is_set():
    b = RequestBudget(RequestRate(1, 60.0))  # real clock: the next token is a minute away
    b.take()
    stop = threading.Event()
    stop.set()
    with rb.cancelled_by(stop), pytest.raises(RequestCancelled):
        with rb.request_turn(b, RequestKind.SUBMIT):
            pass
    with rb.cancelled_by(stop), pytest.raises(RequestCancelled):
        rb.pause(30.0)


def test_waiters_are_served_first_come_first_served():
    b = RequestBudget(RequestRate(20, 1.0))  # real clock, 50 ms per token once empty
    for _ in range(20):
        b.take()
    order: list[int] = []
    threads = [threading.Thread(target=lambda i=i: (b.take(), order.append(i))) for i in range(4)]
    pause = threading.Event()
    for i, thread in enumerate(threads):
        thread.start()
        for _ in range(400):  # until this one has joined the queue (or been served already)
            if b.waiting + len(order) == i + 1:
                break
            pause.wait(0.005)
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3]


def test_polls_get_a_tenth_while_full_batches_wait_half_while_tight_else_no_limit():
    b, clock = budget(20, 10.0)  # 2 per second
    assert b.poll_wait() == 0.0  # spare
    b.take(RequestKind.POLL)
    assert b.poll_wait() == 0.0  # only polls want it: the bucket alone paces them
    b.take(RequestKind.BULK)
    assert b.poll_wait() == pytest.approx(5.0)  # 1 / (2/s x 10%) since the last poll
    clock.now += 30  # the flood is over, the bucket is full again
    for _ in range(15):
        b.take(RequestKind.SUBMIT)  # lone tasks empty it
    b.take(RequestKind.POLL)
    assert b.poll_wait() == pytest.approx(1.0)  # 1 / (2/s x 50%)
    clock.now += 30
    assert b.poll_wait() == 0.0


def test_request_rates_parse_from_text_and_none_means_no_budget():
    assert RequestRate.parse("20/10") == RequestRate(20, 10.0)
    assert RequestRate.parse(" 100/10s ") == RequestRate(100, 10.0)
    assert RequestRate.parse("none") is None
    assert RequestRate(20, 10).per_second == 2.0 and RequestRate(0.5, 1).burst == 1.0
    for bad in ("20", "a/b", "0/10", "-1/10", "20/0"):
        with pytest.raises(ValueError):
            RequestRate.parse(bad)


def test_the_default_budget_comes_from_the_variable_else_from_the_url(monkeypatch):
    monkeypatch.delenv(rb.BUDGET_VARIABLE, raising=False)
    assert rb.configured_rate(rb.AUTO, "https://compute.api.globus.org") == rb.DEFAULT_REMOTE_RATE
    assert rb.configured_rate(rb.AUTO, "http://127.0.0.1:5000") is None
    assert rb.DEFAULT_REMOTE_RATE.per_second < rb.HOSTED_LIMIT.per_second
    monkeypatch.setenv(rb.BUDGET_VARIABLE, "40/10")
    assert rb.configured_rate(rb.AUTO, "http://127.0.0.1:5000") == RequestRate(40, 10)
    assert rb.configured_rate(None, "https://x") is None  # an argument beats the variable
    assert rb.configured_rate("5/1", "https://x") == RequestRate(5, 1)
    with pytest.raises(TypeError):
        rb.configured_rate(20, "https://x")  # type: ignore[arg-type]


def test_clients_of_one_identity_share_one_budget_and_others_do_not():
    url = "https://compute.budget-sharing.test"

    def client(token: str, **kw) -> Client:
        auth = globus_sdk.AccessTokenAuthorizer(token)
        return Client(base_url=url, authorizer=auth, do_version_check=False, **kw)

    first, second = client("token-a"), client("token-a")
    other = client("token-b")
    assert first.request_budget is not None and first.request_budget is second.request_budget
    assert other.request_budget is not first.request_budget
    assert client("token-a", request_budget=None).request_budget is None
    # A later Client asking for another rate re-rates the one shared budget.
    raised = client("token-a", request_budget="40/10")
    assert raised.request_budget is first.request_budget
    assert first.request_budget.rate == RequestRate(40, 10)
    assert "token-a" not in rb.identity_key(None, globus_sdk.AccessTokenAuthorizer("token-a"))


def test_long_polls_are_explicit_and_default_from_the_variable_or_the_url(monkeypatch):
    def client(url: str, **kw) -> Client:
        auth = globus_sdk.AccessTokenAuthorizer("t")
        return Client(base_url=url, authorizer=auth, do_version_check=False, **kw)

    monkeypatch.delenv("GLOBUS_COMPUTE_LONG_POLL", raising=False)
    assert client("http://127.0.0.1:1").long_poll is True
    assert client("https://compute.api.globus.org").long_poll is False
    assert client("http://127.0.0.1:1", long_poll=False).long_poll is False
    monkeypatch.setenv("GLOBUS_COMPUTE_LONG_POLL", "0")
    assert client("http://127.0.0.1:1").long_poll is False
    monkeypatch.setenv("GLOBUS_COMPUTE_LONG_POLL", "maybe")
    with pytest.raises(ValueError, match="LONG_POLL"):
        client("http://127.0.0.1:1")


def test_the_cli_passes_the_rate_limit_to_the_service_for_rehearsals():
    from globus_compute import cli
    from globus_compute.service.__main__ import parse_args

    for command in ("serve", "up"):
        ns = cli.build_parser().parse_args([command, "--rate-limit", "2", "--rate-burst", "20"])
        assert cli._rate_args(ns) == ["--rate-limit", "2.0", "--rate-burst", "20.0"]
    assert cli._rate_args(cli.build_parser().parse_args(["serve"])) == []
    service = parse_args(["--rate-limit", "2.0", "--rate-burst", "20.0"])
    assert (service.rate_limit, service.rate_burst) == (2.0, 20.0)
