"""The Executor under a rate limit: the fake Client, real threads, a real RequestBudget.

The fake Client spends a turn of its ``request_budget`` on every request, as the real Client
does, and answers as a service that is not loopback (no long polls), so these tests drive the
Executor's hosted code paths.
"""

from __future__ import annotations

import time

import pytest

from globus_compute.client.request_budget import RequestBudget, RequestKind, RequestRate
from globus_compute.errors import ExecutorShutdown
from globus_compute.executor import Executor
from globus_compute.executor.poll_chunks import ChunkSizer
from tests.support.fake_client import FakeClient, HTTPError

pytestmark = pytest.mark.timeout(30)

EP = "00000000-0000-0000-0000-0000000000e1"
REMOTE = "https://compute.api.globus.org"


def double(x):
    return 2 * x


def remote_client(budget: RequestBudget | None = None, **kw) -> FakeClient:
    return FakeClient(service_url=REMOTE, request_budget=budget, **kw)


def executor(client: FakeClient, **kw) -> Executor:
    kw.setdefault("poll_interval_s", 0.01)
    kw.setdefault("max_poll_interval_s", 0.05)
    return Executor(endpoint_id=EP, client=client, **kw)


def rate_limited(n: int) -> list[BaseException]:
    return [HTTPError(429, "slow down", {"Retry-After": "0"}) for _ in range(n)]


def test_a_429_storm_longer_than_globus_sdks_retries_fails_no_future():
    """globus-sdk gives up after 5 retries and the poller after 8 failures: 12 429s in a row on
    both submits and polls must still fail nothing."""
    client = remote_client()
    client.submit_errors.extend(rate_limited(12))
    client.poll_errors.extend(rate_limited(12))
    with executor(client) as ex:
        futures = [ex.submit(double, i) for i in range(20)]
        assert [f.result(timeout=20) for f in futures] == [2 * i for i in range(20)]
    assert not client.submit_errors and not client.poll_errors  # the whole storm was seen


def test_two_executors_of_one_identity_share_the_budget():
    budget = RequestBudget(RequestRate(20, 1.0))  # burst 20, then 20 per second
    clients = [remote_client(budget), remote_client(budget)]
    start = time.monotonic()
    with executor(clients[0], batch_size=1) as first, executor(clients[1], batch_size=1) as second:
        futures = [ex.submit(double, i) for i in range(20) for ex in (first, second)]
        assert [f.result(timeout=20) for f in futures] == [2 * i for i in range(20) for _ in "ab"]
    elapsed = time.monotonic() - start
    granted = sum(budget.granted.values())
    assert granted >= 40  # every submit of both went through the one budget...
    assert granted <= 20 + 20 * elapsed + 1  # ...which never let more through than it holds
    assert elapsed >= 0.9  # 40+ requests through a 20-request burst take a second


def test_lone_tasks_go_at_once_while_the_budget_has_room():
    budget = RequestBudget(RequestRate(19, 10.0))
    client = remote_client(budget)
    with executor(client) as ex:
        for i in range(4):  # submit -> result -> submit: each alone in its request
            sent = time.monotonic()
            assert ex.submit(double, i).result(timeout=10) == 2 * i
            assert client.batch_times[-1] - sent < 0.2
    assert [len(batch) for batch in client.batches] == [1, 1, 1, 1]
    assert ex.api_burst_limit is None  # the reference's 4-per-16 s rule is not in the way


def test_tasks_that_arrive_while_waiting_for_a_turn_go_in_that_turn():
    budget = RequestBudget(RequestRate(2, 1.0))
    budget.take()
    budget.take()  # empty: the next turn is half a second away
    client = remote_client(budget)
    with executor(client, batch_interval=0.0) as ex:
        futures = [ex.submit(double, i) for i in range(10)]
        assert [f.result(timeout=10) for f in futures] == [2 * i for i in range(10)]
    assert len(client.batches) <= 2  # the first task waits for the turn; the rest join it
    assert budget.granted[RequestKind.SUBMIT] + budget.granted[RequestKind.BULK] <= 2


def test_a_poll_larger_than_the_service_accepts_falls_back_to_smaller_chunks():
    client = remote_client()
    client.max_poll_ids = 100  # larger polls get 413
    with executor(client) as ex:
        futures = [ex.submit(double, i) for i in range(1000)]
        assert [f.result(timeout=20) for f in futures] == [2 * i for i in range(1000)]
    sizes = [len(ids) for ids, _ in client.poll_calls]
    refused = [n for n in sizes if n > 100]
    assert refused and len(refused) <= 5  # 1024 -> 512 -> 256 -> 128 -> 64: each refused once
    assert max(sizes[sizes.index(refused[-1]) + 1 :]) <= 100  # never too large again


def test_abort_cuts_a_wait_for_a_turn_short_and_fails_what_was_not_sent():
    budget = RequestBudget(RequestRate(1, 60.0))
    budget.take()  # the next turn is a minute away
    client = remote_client(budget)
    ex = executor(client)
    future = ex.submit(double, 1)
    ex._submitter.abort("the interpreter is exiting")
    with pytest.raises(ExecutorShutdown, match="interpreter is exiting"):
        future.result(timeout=5)
    ex._submitter.join(5)
    assert not ex._submitter.thread.is_alive() and client.batches == []
    ex.shutdown()


# -- ChunkSizer ------------------------------------------------------------------------------


def test_chunks_double_while_the_service_answers_every_id_and_more_are_pending():
    sizer = ChunkSizer(first=100, max_ids=1000)
    sizes = []
    for _ in range(6):
        asked = sizer.size()
        sizes.append(asked)
        sizer.answered(asked, carried=asked, finished=0, answer_bytes=0, more=True)
    assert sizes == [100, 200, 400, 800, 1000, 1000]
    sizer.answered(1000, carried=1000, finished=0, answer_bytes=0, more=False)
    assert sizer.size() == 1000  # all pending fit: no reason to grow


def test_chunks_stay_under_the_answer_bound_at_the_bytes_per_finished_task_seen():
    sizer = ChunkSizer(first=1024, max_ids=16_384, max_answer_bytes=6_000_000)
    assert sizer.size() == 1024  # no byte figures yet
    # 40 finished 133 KB results and 60 small pending documents in one answer.
    sizer.answered(100, carried=100, finished=40, answer_bytes=40 * 133_000 + 60 * 150, more=True)
    assert sizer.bytes_per_finished_task == pytest.approx(133_000, rel=0.01)
    assert sizer.size() == 6_000_000 // 133_000
    sizer.answered(45, carried=45, finished=45, answer_bytes=45 * 300, more=True)
    assert sizer.size() < 100  # a smaller result lowers the estimate only slowly


def test_a_refusal_halves_the_chunk_for_good_but_not_for_a_single_id_or_other_errors():
    sizer = ChunkSizer(first=1024, max_ids=16_384)
    assert sizer.refused(1024, 413) is True and sizer.size() == 512
    sizer.answered(512, carried=512, finished=0, answer_bytes=0, more=True)
    assert sizer.size() == 512  # the refused size is now the ceiling
    assert sizer.refused(512, 422) is True and sizer.size() == 256
    assert sizer.refused(256, 500) is False and sizer.size() == 256
    assert sizer.refused(1, 413) is False


def test_an_answer_that_carried_fewer_ids_steps_the_chunk_down():
    sizer = ChunkSizer(first=1000, max_ids=1000)
    sizer.answered(1000, carried=100, finished=0, answer_bytes=0, more=True)
    assert sizer.size() == 500  # halve at most: omitted ids may only be unknown ones
    sizer.answered(500, carried=300, finished=0, answer_bytes=0, more=True)
    assert sizer.size() == 300
