"""TaskSubmitter on its own: the fake Client, a real ResultWatcher, knobs set at construction."""

from __future__ import annotations

import threading
import time

import pytest

from globus_compute.client.batch import pack_task_payload
from globus_compute.errors import ExecutorBroken
from globus_compute.executor.future import ComputeFuture
from globus_compute.executor.poller import PollSettings
from globus_compute.executor.progress import TaskCounts
from globus_compute.executor.settings import TaskSettings
from globus_compute.executor.submitter import TaskItem, TaskSubmitter
from globus_compute.executor.watcher import ResultWatcher
from tests.support.fake_client import FakeClient

pytestmark = pytest.mark.timeout(30)

EP = "00000000-0000-0000-0000-0000000000e1"
KEY = TaskSettings.validated(endpoint_id=EP).submit_key()


def double(x):
    return 2 * x


class Stack:
    """A submitter wired to a watcher and counts, as the Executor wires them."""

    def __init__(self, client: FakeClient, **knobs) -> None:
        self.client = client
        self.counts = TaskCounts()
        self.watcher = ResultWatcher(
            client, PollSettings(loopback=True, long_poll_s=0.05), self.counts
        )
        self.learned: list[str] = []
        knobs.setdefault("batch_size", 128)
        knobs.setdefault("batch_interval", 0.05)
        knobs.setdefault("limiter", None)
        self.submitter = TaskSubmitter(
            client,
            self.watcher,
            self.counts,
            current_task_group=lambda: None,
            learn_task_group=self.learned.append,
            **knobs,
        )
        self.function_id = client.register_function(double)

    def put(self, *args) -> ComputeFuture:
        future = ComputeFuture()
        payload = pack_task_payload(self.client.fx_serializer, args, None)
        item = TaskItem(future, self.function_id, payload, KEY, time.monotonic())
        assert self.submitter.put(item)
        return future

    def stop(self) -> None:
        self.submitter.close()
        self.submitter.join(10)
        self.watcher.close_when_idle()
        self.watcher.join(10)


@pytest.fixture
def stacks():
    made: list[Stack] = []

    def make(client: FakeClient, **knobs) -> Stack:
        made.append(Stack(client, **knobs))
        return made[-1]

    yield make
    for stack in made:
        stack.client.submit_gate = None
        stack.stop()


def test_batches_split_by_request_size(stacks):
    client = FakeClient()
    client.submit_gate = threading.Event()
    one = len(client.fx_serializer.serialize((("y" * 1000),)))
    # About three 1000-char payloads per request.
    stack = stacks(client, max_request_chars=3 * one)
    first = stack.put("x")
    assert client.submit_started.wait(10)
    rest = [stack.put("y" * 1000) for _ in range(6)]
    client.submit_gate.set()
    assert all(f.result(timeout=10) == "y" * 2000 for f in rest)
    assert first.result(timeout=10) == "xx"
    assert max(len(b) for b in client.batches[1:]) < 6
    assert sum(len(b) for b in client.batches) == 7


def test_service_created_task_group_is_learned(stacks):
    client = FakeClient()
    stack = stacks(client)
    assert stack.put(1).result(timeout=10) == 2
    assert stack.learned == [client.task_group_id]


def test_put_after_close_is_refused_and_queued_tasks_can_be_cancelled(stacks):
    client = FakeClient()
    client.submit_gate = threading.Event()
    stack = stacks(client)
    sent = stack.put(1)
    assert client.submit_started.wait(10)
    queued = [stack.put(i) for i in range(3)]
    stack.submitter.close(cancel_queued=True)
    future = ComputeFuture()
    payload = pack_task_payload(client.fx_serializer, (9,), None)
    assert not stack.submitter.put(TaskItem(future, stack.function_id, payload, KEY, 0.0))
    client.submit_gate.set()
    assert sent.result(timeout=10) == 2
    assert all(f.cancelled() for f in queued)
    assert stack.counts.snapshot().cancelled == 3
    assert stack.counts.snapshot().queued == 0


class BrokenLimiter:
    """A burst limiter with a defect: the submitter thread dies on its first round."""

    limit = 1
    window_s = 1.0

    def delay(self) -> float:
        raise RuntimeError("a defect in the limiter")

    def record(self, num_tasks: int) -> None:
        raise AssertionError("never reached")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_thread_defect_fails_queued_futures_with_executor_broken_and_refuses_more(stacks):
    client = FakeClient()
    stack = stacks(client, limiter=BrokenLimiter())
    stranded = stack.put(1)
    with pytest.raises(ExecutorBroken, match="task submitter thread failed") as info:
        stranded.result(timeout=10)
    assert "a defect in the limiter" in str(info.value)
    stack.submitter.join(10)
    with pytest.raises(ExecutorBroken, match="task submitter thread failed"):
        stack.put(2)
    assert client.batches == []
    assert stack.counts.snapshot().failed == 1
