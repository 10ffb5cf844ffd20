"""ResultPoller and BurstLimiter on their own, with the fake Client and injected clocks."""

from __future__ import annotations

import logging

import pytest

from globus_compute.client.task_table import TaskOutcomes
from globus_compute.errors import ExecutorBroken, ResultPollingError
from globus_compute.executor.burst_limiter import BurstLimiter
from globus_compute.executor.future import ComputeFuture
from globus_compute.executor.poller import PollSettings, ResultPoller
from tests.support.fake_client import FakeClient, HTTPError
from tests.support.faults import wait_until

pytestmark = pytest.mark.timeout(30)


def submitted(client: FakeClient, n: int) -> list[tuple[str, ComputeFuture]]:
    """Put ``n`` pending tasks into the fake service and return (task id, future) pairs."""
    from tests.support.fake_client import FakeBatch

    fid = client.register_function(lambda x: x + 1)
    batch = FakeBatch()
    for i in range(n):
        batch.add_payload(
            fid,
            client.fx_serializer.pack_buffers(
                [client.fx_serializer.serialize((i,)), client.fx_serializer.serialize({})]
            ),
        )
    tids = client.batch_run("ep", batch)["tasks"][fid]
    pairs = []
    for tid in tids:
        fut = ComputeFuture(tid)
        fut.set_running_or_notify_cancel()
        pairs.append((tid, fut))
    return pairs


def make_poller(client, **kw):
    kw.setdefault("long_poll", True)
    kw.setdefault("min_interval_s", 0.001)
    kw.setdefault("max_interval_s", 0.01)
    return ResultPoller(client, PollSettings(**kw))


def test_results_are_set_and_table_emptied():
    client = FakeClient()
    poller = make_poller(client)
    pairs = submitted(client, 5)
    assert poller.watch(pairs)
    assert [f.result(timeout=10) for _, f in pairs] == [1, 2, 3, 4, 5]
    poller.close_when_idle()
    poller.join(10)
    assert poller.pending_count() == 0 and not poller.thread.is_alive()


def test_long_poll_service_is_asked_to_wait_and_others_are_not():
    client = FakeClient()
    loop = make_poller(client, long_poll_s=0.5)
    pairs = submitted(client, 1)
    loop.watch(pairs)
    pairs[0][1].result(timeout=10)
    assert client.poll_calls[0][1] == 0.5
    remote = make_poller(client, long_poll=False)
    pairs = submitted(client, 1)
    remote.watch(pairs)
    pairs[0][1].result(timeout=10)
    assert client.poll_calls[-1][1] == 0.0
    for p in (loop, remote):
        p.close_when_idle()
        p.join(10)


def test_gives_up_after_consecutive_failures_and_fails_every_pending_future():
    client = FakeClient(auto_finish=False)
    client.poll_errors.extend(ConnectionError(f"down {i}") for i in range(3))
    poller = make_poller(client, max_failures=3)
    pairs = submitted(client, 4)
    poller.watch(pairs)
    for _, fut in pairs:
        with pytest.raises(ResultPollingError, match="3 consecutive"):
            fut.result(timeout=10)
    poller.join(10)
    assert not poller.accepting and poller.failure is not None
    assert poller.watch(submitted(client, 1)) is False


def test_forbidden_is_fatal_at_once():
    client = FakeClient(auto_finish=False)
    client.poll_errors.append(HTTPError(403, "forbidden"))
    poller = make_poller(client, max_failures=100)
    pairs = submitted(client, 1)
    poller.watch(pairs)
    with pytest.raises(ResultPollingError, match="HTTP 403"):
        pairs[0][1].result(timeout=10)
    assert len(client.poll_calls) == 1


def test_ids_the_service_never_reports_fail_instead_of_hanging():
    client = FakeClient(auto_finish=False)
    poller = make_poller(client, missing_limit=2, missing_grace_s=0.0, long_poll_s=0.01)
    pairs = submitted(client, 2)
    client.forget(pairs[0][0])
    poller.watch(pairs)
    with pytest.raises(ResultPollingError, match="unknown"):
        pairs[0][1].result(timeout=10)
    assert not pairs[1][1].done()
    client.finish(pairs[1][0])
    assert pairs[1][1].result(timeout=10) == 2
    poller.close_when_idle()
    poller.join(10)


def test_stop_fails_pending_futures_with_the_reason():
    client = FakeClient(auto_finish=False)
    poller = make_poller(client, long_poll_s=0.05)
    pairs = submitted(client, 2)
    poller.watch(pairs)
    poller.stop("the interpreter is exiting")
    poller.join(10)
    for _, fut in pairs:
        with pytest.raises(ResultPollingError, match="interpreter is exiting"):
            fut.result(timeout=0)


def test_cancelled_future_is_left_alone():
    client = FakeClient(auto_finish=False)
    poller = make_poller(client)
    pairs = submitted(client, 1)
    fut = ComputeFuture(pairs[0][0])  # a reloaded future: pending, so the user may cancel it
    assert fut.cancel()
    poller.watch([(pairs[0][0], fut)])
    client.finish()
    poller.close_when_idle()
    poller.join(10)
    assert fut.cancelled()


def test_many_pending_tasks_are_polled_in_chunks():
    client = FakeClient(auto_finish=False)
    poller = make_poller(client, chunk_size=4, max_chunk_size=4, long_poll_s=0.01)
    pairs = submitted(client, 10)
    poller.watch(pairs)
    client.finish()
    assert [f.result(timeout=10) for _, f in pairs] == [i + 1 for i in range(10)]
    assert max(len(ids) for ids, _ in client.poll_calls) <= 4
    poller.close_when_idle()
    poller.join(10)


def test_poll_settings_are_clamped_to_sensible_values():
    settings = PollSettings(long_poll=False, chunk_size=0, min_interval_s=2.0, max_interval_s=1.0)
    assert (settings.chunk_size, settings.max_interval_s, settings.max_failures) == (1, 2.0, 8)
    assert PollSettings(long_poll=True, max_failures=0).max_failures == 1
    assert PollSettings(long_poll=True, chunk_size=64, max_chunk_size=8).max_chunk_size == 64
    loop = PollSettings.for_service(True, long_poll_s=1, min_interval_s=1, max_interval_s=2)
    remote = PollSettings.for_service(False, long_poll_s=1, min_interval_s=1, max_interval_s=2)
    assert (loop.chunk_size, loop.max_chunk_size) == (1024, 1024)
    assert (remote.chunk_size, remote.max_chunk_size) == (1024, 16_384)


def test_failed_polls_are_retried_after_backoff_pauses():
    client = FakeClient(auto_finish=False)
    client.poll_errors.extend(ConnectionError(f"down {i}") for i in range(2))
    poller = make_poller(client, min_interval_s=0.001, max_interval_s=0.002)
    assert poller.settings.retry_backoff.max_s == 0.002
    pairs = submitted(client, 1)
    poller.watch(pairs)
    client.finish()
    assert pairs[0][1].result(timeout=10) == 1
    assert len(client.poll_calls) >= 3  # two failures, then the answer
    poller.close_when_idle()
    poller.join(10)


def test_remote_interval_backs_off_while_idle_and_resets_on_activity():
    client = FakeClient(auto_finish=False)
    poller = make_poller(client, long_poll=False, min_interval_s=0.01, max_interval_s=0.04)
    assert poller._pause(0.0) == 0.0
    poller._activity = True  # what watch() does when new tasks arrive
    poller._wake.set()
    assert poller._pause(10.0) == 0.01  # new tasks cut a long pause short


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_limiter_allows_a_burst_then_spaces_calls():
    clock = FakeClock()
    limiter = BurstLimiter(4, 16, batch_size=128, clock=clock, jitter=lambda: 0.0)
    for _ in range(4):
        assert limiter.delay() == 0.0
        limiter.record(1)
    assert limiter.delay() == pytest.approx(4.0)
    clock.now += 3
    assert limiter.delay() == pytest.approx(1.0)
    clock.now += 14  # the burst has left the window
    assert limiter.delay() == 0.0


def test_burst_limiter_does_not_count_full_batches():
    limiter = BurstLimiter(1, 16, batch_size=2, clock=FakeClock(), jitter=lambda: 0.0)
    limiter.record(2)
    assert limiter.delay() == 0.0
    limiter.record(1)
    assert limiter.delay() > 0


def test_ids_a_full_answer_deferred_are_asked_again_not_failed_as_unknown():
    """Regression: an id left out of a full answer (listed under ``deferred``) counted as
    missing, and after ``missing_limit`` such answers failed as "unknown to the service"."""
    client = FakeClient()
    client.max_answer_tasks = 2
    poller = make_poller(client, missing_limit=1, missing_grace_s=0.0, long_poll_s=0.01)
    pairs = submitted(client, 9)
    poller.watch(pairs)
    assert [f.result(timeout=10) for _, f in pairs] == [i + 1 for i in range(9)]
    assert len(client.poll_calls) >= 5  # two per answer
    poller.close_when_idle()
    poller.join(10)


EP_OFFLINE = "33333333-3333-3333-3333-333333333333"


def test_tasks_waiting_on_an_offline_endpoint_are_said_once_and_shown_until_it_is_back(caplog):
    client = FakeClient(auto_finish=False)
    client.endpoint_statuses[EP_OFFLINE] = {"status": "offline", "last_heartbeat": 1234.5}
    poller = make_poller(client, long_poll_s=0.005, endpoint_check_s=3600.0)
    pairs = submitted(client, 3)
    with caplog.at_level(logging.INFO, logger="globus_compute.executor.endpoint_watch"):
        poller.watch(pairs, endpoint_id=EP_OFFLINE)
        wait_until(lambda: len(client.poll_calls) >= 10, "ten polls")
        assert poller.waiting_on() == {EP_OFFLINE: 1234.5}
        assert client.status_calls == [EP_OFFLINE]  # once per endpoint_check_s, not per poll
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "waiting for endpoint" in warnings[0].getMessage()
        client.endpoint_statuses[EP_OFFLINE] = {"status": "online"}
        client.finish()
        assert [f.result(timeout=10) for _, f in pairs] == [1, 2, 3]
        wait_until(lambda: "back online" in caplog.text, "the back-online line")
    assert client.status_calls == [EP_OFFLINE, EP_OFFLINE]
    assert poller.waiting_on() == {}
    poller.close_when_idle()
    poller.join(10)


def test_tasks_of_no_known_endpoint_cost_no_status_request():
    client = FakeClient()
    poller = make_poller(client)
    pairs = submitted(client, 2)
    poller.watch(pairs)  # as reload_tasks hands them over
    assert [f.result(timeout=10) for _, f in pairs] == [1, 2]
    poller.close_when_idle()
    poller.join(10)
    assert client.status_calls == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_poller_dying_half_way_through_an_answer_strands_no_future():
    """Regression: a defect while reading an answer (here: looking up the last id raises)
    killed the thread after the ids before it had left the table, and their futures stayed
    pending for ever."""
    client = FakeClient()
    pairs = submitted(client, 4)
    real = client.get_task_outcomes

    class Defective(TaskOutcomes):
        def get(self, task_id, default=None):
            if task_id == pairs[-1][0]:
                raise RuntimeError("a defect")
            return super().get(task_id, default)

    def last_is_not_an_outcome(ids, *, wait=0.0):
        return Defective(real(ids, wait=wait))

    client.get_task_outcomes = last_is_not_an_outcome
    poller = make_poller(client)
    poller.watch(pairs)
    for _, future in pairs:
        future.exception(timeout=10)  # resolved, one way or the other
    assert [f.result() for _, f in pairs[:3]] == [1, 2, 3]
    with pytest.raises(ExecutorBroken, match="result poller thread failed"):
        pairs[3][1].result()
    poller.join(10)


def test_with_a_missing_limit_of_one_the_first_miss_fails_the_task():
    """Regression: a first miss that reached the limit raised KeyError in the poller."""
    client = FakeClient(auto_finish=False)
    poller = make_poller(client, missing_limit=1, missing_grace_s=0.0, long_poll_s=0.01)
    pairs = submitted(client, 2)
    client.forget(pairs[0][0])
    poller.watch(pairs)
    with pytest.raises(ResultPollingError, match="unknown"):
        pairs[0][1].result(timeout=10)
    client.finish(pairs[1][0])
    assert pairs[1][1].result(timeout=10) == 2
    poller.close_when_idle()
    poller.join(10)
