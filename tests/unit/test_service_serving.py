"""The serving machinery of the service, without sockets (issue 16; issue 15 item 6).

Connection admission, the bytes-in-flight budget, the rate limiter's memory, wake-ups across the
database thread, bounded answers and claims, purge slices, storage errors, the log filter and the
JSON edge cases. The same behaviour over real HTTP is tested in ``tests/security`` and
``tests/faults``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from globus_compute.service import bodies
from globus_compute.service.actions import sweep
from globus_compute.service.config import ServiceConfig
from globus_compute.service.connections import ConnectionGuard, ConnectionLimits
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import ApiError
from globus_compute.service.limits import BodyBudget, LimitsMiddleware, TokenBucket
from globus_compute.service.logs import RepeatFilter
from globus_compute.service.notify import Notifier
from globus_compute.service.records import User
from globus_compute.service.store import StorageFull, StorageLost, Store
from globus_compute.service.store.tasks import PurgeCutoffs

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    config = ServiceConfig(state_dir=tmp_path / "state", max_answer_bytes=1000)
    store = Store(config.state_dir)
    yield ServiceContext(config=config, store=store, notifier=Notifier())
    store.close()


def _alice(ctx: ServiceContext) -> User:
    ctx.store.identities.ensure_user("alice")
    user = ctx.store.identities.get_user("alice")
    assert user is not None
    return user


def _finished(ctx: ServiceContext, user: User, results: list[str]) -> list[str]:
    eid, fid = str(uuid.uuid4()), str(uuid.uuid4())
    _, tids = ctx.store.tasks.submit_tasks(user.id, eid, None, [(fid, "p")] * len(results))
    ctx.store.tasks.store_results(
        eid,
        [
            {"task_id": t, "status": "success", "result": r, "completion_t": "1"}
            for t, r in zip(tids, results, strict=True)
        ],
    )
    return tids


# -- connections --------------------------------------------------------------------------------


class FakeConnection:
    def __init__(self, guard: ConnectionGuard, client: str, served: int = 0) -> None:
        self.guard, self.client_host, self.served = guard, client, served
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True
        self.guard.release(self)  # type: ignore[arg-type]


def _guard(total: int, per_client: int) -> ConnectionGuard:
    return ConnectionGuard(ConnectionLimits(total, per_client, 10.0, 10.0, reserved_files=0))


def test_a_newcomer_evicts_a_connection_that_never_asked_before_an_idle_one() -> None:
    guard = _guard(total=3, per_client=3)
    idle, fresh, busy = (FakeConnection(guard, "a", served=1), FakeConnection(guard, "a"),
                         FakeConnection(guard, "a"))  # fmt: skip
    for conn in (idle, fresh, busy):
        assert guard.admit(conn)  # type: ignore[arg-type]
    guard.waiting(idle)  # type: ignore[arg-type]
    guard.waiting(fresh)  # type: ignore[arg-type]
    guard.busy(busy)  # type: ignore[arg-type]
    assert guard.admit(FakeConnection(guard, "b"))  # type: ignore[arg-type]
    assert (fresh.evicted, idle.evicted, busy.evicted) == (True, False, False)
    assert guard.admit(FakeConnection(guard, "c"))  # type: ignore[arg-type]
    assert idle.evicted and not busy.evicted
    # Every connection is now busy or new: the next one is refused.
    assert not guard.admit(FakeConnection(guard, "d"))  # type: ignore[arg-type]
    assert guard.open == 3 and guard.refused == 1


def test_one_client_address_evicts_only_its_own_connections() -> None:
    guard = _guard(total=100, per_client=2)
    other = FakeConnection(guard, "other")
    mine = [FakeConnection(guard, "flood") for _ in range(2)]
    for conn in (other, *mine):
        assert guard.admit(conn)  # type: ignore[arg-type]
        guard.waiting(conn)  # type: ignore[arg-type]
    assert guard.admit(FakeConnection(guard, "flood"))  # type: ignore[arg-type]
    assert mine[0].evicted and not mine[1].evicted and not other.evicted
    assert guard.by_client == {"other": 1, "flood": 2}


def test_capacity_stays_below_the_open_file_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    guard = ConnectionGuard(ConnectionLimits(10**9, 10, 1.0, 1.0, reserved_files=320))
    if soft != resource.RLIM_INFINITY:
        assert guard.capacity() == soft - 320


# -- bodies in flight, rate limits --------------------------------------------------------------


def test_body_budget_bounds_each_client_and_everyone() -> None:
    async def scenario() -> list[bool]:
        budget = BodyBudget(total=100, per_client=60)
        got = [await budget.reserve("a", 60, 0.01), await budget.reserve("a", 1, 0.01)]
        got.append(await budget.reserve("b", 40, 0.01))
        got.append(await budget.reserve("c", 1, 0.01))  # everyone's budget is spent
        waiting = asyncio.create_task(budget.reserve("c", 30, 5.0))
        await asyncio.sleep(0.05)
        await budget.release("a", 60)
        got.append(await asyncio.wait_for(waiting, 5.0))  # room came back while it waited
        got.append(budget.held == {"b": 40, "c": 30} and budget.held_total == 70)
        return got

    assert asyncio.run(scenario()) == [True, False, True, False, True, True]


def test_token_bucket_forgets_the_oldest_keys_beyond_its_bound() -> None:
    from globus_compute.service import limits

    bucket = TokenBucket(rate=1.0, burst=1.0)
    for i in range(limits.MAX_BUCKETS + 50):
        bucket.take(("addr", str(i)))
    assert len(bucket) <= limits.MAX_BUCKETS


def test_made_up_tokens_share_their_address_bucket(ctx: ServiceContext) -> None:
    """Failed authentication is counted per client address: one bucket, however many tokens."""
    bucket = TokenBucket(rate=1.0, burst=5.0)
    answered: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a request with a made-up token reached the app")

    async def scenario() -> None:
        middleware = LimitsMiddleware(app, ctx, bucket)
        for i in range(50):
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v2/batch_status",
                "headers": [(b"authorization", f"Bearer made-up-{i}".encode())],
                "client": ("192.0.2.7", 40000 + i),
            }

            async def send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    answered.append(message["status"])

            async def receive() -> Any:
                raise AssertionError("the body of a request with a made-up token was read")

            await middleware(scope, receive, send)

    asyncio.run(scenario())
    assert answered[:5] == [401] * 5 and set(answered[5:]) == {429}
    assert len(bucket) == 1


# -- wake-ups across threads ----------------------------------------------------------------------


def test_a_wake_up_from_another_thread_between_read_and_park_is_not_missed() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.listen([("task", "t")]) as listener:
            # The "read" happens; before this request parks, the database thread commits a
            # result and notifies (as a service function on that thread does).
            thread = threading.Thread(target=notifier.notify_tasks, args=(["t"],))
            thread.start()
            thread.join()
            await asyncio.sleep(0)  # let the loop run the handed-over wake-up
            return await listener.wait(5.0)

    assert asyncio.run(asyncio.wait_for(scenario(), 2.0)) is True


def test_a_parked_listener_is_woken_from_the_database_thread(ctx: ServiceContext) -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        with ctx.notifier.listen([("endpoint", "e")]) as listener:
            parked = asyncio.create_task(listener.wait(20.0))
            await asyncio.sleep(0.05)
            began = loop.time()
            await ctx.call(lambda c: c.notifier.notify_endpoints(["e"]))
            assert await asyncio.wait_for(parked, 5.0)
            return loop.time() - began

    assert asyncio.run(scenario()) < 1.0


def test_database_thread_runs_a_request_before_queued_bulk_work() -> None:
    from globus_compute.service.store.thread import DatabaseThread

    thread = DatabaseThread("test-database")
    ran: list[str] = []
    gate = threading.Event()

    async def scenario() -> None:
        first = asyncio.create_task(
            thread.call(lambda: gate.wait(5) and ran.append("bulk 0"), bulk=True)
        )
        await asyncio.sleep(0.05)  # bulk 0 runs, holding the thread until the gate opens
        rest = [
            asyncio.create_task(thread.call(lambda i=i: ran.append(f"bulk {i}"), bulk=True))
            for i in (1, 2)
        ]
        request = asyncio.create_task(thread.call(lambda: ran.append("request")))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *rest, request)

    try:
        asyncio.run(scenario())
    finally:
        thread.close()
    assert ran == ["bulk 0", "request", "bulk 1", "bulk 2"]


# -- bounded answers, claims and purges -----------------------------------------------------------


def test_document_page_stops_before_the_budget_and_lists_only_visible_ids(
    ctx: ServiceContext,
) -> None:
    alice = _alice(ctx)
    tids = _finished(ctx, alice, ["r" * 400] * 5)
    stranger = str(uuid.uuid4())
    page = ctx.store.tasks.document_page(alice.id, [*tids, stranger], max_bytes=1000)
    assert len(page.docs) == 2 and page.text_bytes == 800
    assert sorted(page.deferred) == sorted(set(tids) - set(page.docs))
    alone = ctx.store.tasks.document_page(alice.id, tids[:1], max_bytes=10)
    assert list(alone.docs) == tids[:1] and alone.deferred == []  # one document always goes
    # Only what was handed out starts its retention clock.
    retrieved = ctx.store.database.connection.execute(
        "SELECT id FROM tasks WHERE retrieved IS NOT NULL"
    ).fetchall()
    assert {r[0] for r in retrieved} == set(page.docs) | {tids[0]}


def test_a_big_read_goes_slice_by_slice_with_other_work_in_between(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from globus_compute.service.actions import tasks as task_actions

    monkeypatch.setattr(task_actions, "READ_SLICE_BYTES", 250)
    ctx.config.max_answer_bytes = 10_000
    alice = _alice(ctx)
    tids = _finished(ctx, alice, ["r" * 200] * 6)
    first = ctx.store.tasks.document_page(alice.id, tids, 10_000, slice_bytes=250)
    assert len(first.docs) == 2 and len(first.unread) == 4 and first.deferred == []

    async def scenario() -> tuple[Any, list[str]]:
        order: list[str] = []
        original = task_actions.read_slice

        def slice_noted(*args: Any) -> Any:
            order.append("slice")
            return original(*args)

        monkeypatch.setattr(task_actions, "read_slice", slice_noted)
        read = asyncio.create_task(task_actions.read_documents(ctx, alice, tids))
        await asyncio.sleep(0)
        await ctx.call(lambda c: order.append("other request"))
        return await read, order

    page, order = asyncio.run(scenario())
    assert sorted(page.docs) == sorted(tids) and page.text_bytes == 1200
    assert order.index("other request") < len(order) - 1  # served between two slices


def test_claim_stops_before_the_budget_but_always_takes_one(ctx: ServiceContext) -> None:
    alice = _alice(ctx)
    eid, fid = str(uuid.uuid4()), str(uuid.uuid4())
    ctx.store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p" * 400)] * 5)
    claimed = ctx.store.tasks.claim_tasks(eid, 10, 30.0, max_bytes=1000)
    assert len(claimed) == 2 and all(t["attempt"] == 1 for t in claimed)
    assert len(ctx.store.tasks.claim_tasks(eid, 10, 30.0, max_bytes=1)) == 1
    assert len(ctx.store.tasks.claim_tasks(eid, 10, 30.0)) == 2


def test_purge_runs_in_slices_with_other_work_in_between(ctx: ServiceContext) -> None:
    alice = _alice(ctx)
    tids = _finished(ctx, alice, ["00\n"] * 9000)
    ctx.store.tasks.task_documents(alice.id, tids)  # retrieved: due once retention is over
    ctx.config.result_retention_s = -1.0
    cutoffs = PurgeCutoffs.at(1e12, 0, 1e9)
    assert ctx.store.tasks.purge_slice(cutoffs, limit=10) == 10

    async def scenario() -> tuple[bool, int]:
        purge = asyncio.create_task(sweep.purge_expired_tasks(ctx))
        await asyncio.sleep(0)  # the purge is under way
        # A request arriving now is served before the purge is over (its slices are bulk work).
        await ctx.call(lambda c: c.store.tasks.task_documents(alice.id, tids[-5:]))
        return purge.done(), await purge

    done_when_answered, purged = asyncio.run(scenario())
    assert purged == 8990 and not done_when_answered


# -- storage errors -----------------------------------------------------------------------------


def test_a_full_disk_at_the_store_seam_is_a_storage_full_error(ctx: ServiceContext) -> None:
    def full(c: ServiceContext) -> None:
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL
        raise error

    with pytest.raises(StorageFull, match="disk is full"):
        asyncio.run(ctx.call(full))
    assert ctx.store.database.lost is None  # a full disk is not a lost database


def test_a_deleted_or_replaced_database_file_is_lost_for_good(tmp_path: Path) -> None:
    for how in ("deleted", "replaced"):
        store = Store(tmp_path / how)
        try:
            path = store.database.path
            if how == "deleted":
                path.unlink()
            else:
                other = Store(tmp_path / "other")
                other.close()
                os.replace(other.database.path, path)
            with pytest.raises(StorageLost, match=how):
                store.identities.ensure_user("alice")
            assert not path.exists() or how == "replaced"
            with pytest.raises(StorageLost, match=how):
                asyncio.run(store.database.call(lambda: None))
        finally:
            store.close()


# -- log and JSON -------------------------------------------------------------------------------


def test_repeat_filter_lets_a_burst_through_then_counts_the_rest() -> None:
    now = [0.0]
    repeat = RepeatFilter(burst=3, window_s=60.0, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, (), None)

    passed = [repeat.filter(record("accept failed")) for _ in range(1000)]
    assert passed.count(True) == 3
    assert repeat.filter(record("something else"))
    now[0] = 61.0
    later = record("accept failed")
    assert repeat.filter(later) and "997 more like this" in later.getMessage()


def test_a_rotated_log_file_keeps_the_process_stderr(tmp_path: Path) -> None:
    """With ``--log-file`` the service's stderr (which ``local.py`` points at the same file)
    follows the current log file across rotations, and the backups are bounded."""
    log_file = tmp_path / "service.log"
    script = (
        "import logging, sys\n"
        "from globus_compute.service import logs\n"
        "logs.LOG_FILE_BYTES, logs.LOG_FILE_BACKUPS = 2000, 2\n"
        f"logs.configure('INFO', __import__('pathlib').Path({str(log_file)!r}))\n"
        "for i in range(100):\n"
        "    logging.getLogger(f'kind{i}').info('record %d %s', i, 'x' * 100)\n"
        "print('stderr after the rotations', file=sys.stderr, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "stderr still went to the parent's pipe"
    current = log_file.read_text()
    assert "stderr after the rotations" in current and "record 99" in current
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "service.log",
        "service.log.1",
        "service.log.2",
    ]
    assert all(p.stat().st_size < 2500 for p in tmp_path.iterdir())


def test_lone_surrogates_are_taken_only_where_asked_and_nesting_is_still_bounded() -> None:
    text = b'{"results": [{"exception": "bad \\ud800"}]}'
    with pytest.raises(ApiError) as refused:
        bodies.parse_json(text)
    assert refused.value.status == 400
    parsed = bodies.parse_json(text, lone_surrogates=True)
    assert parsed == {"results": [{"exception": "bad \ud800"}]}
    deep = b"[" * (bodies.MAX_NESTING + 1) + b'"\\ud800"' + b"]" * (bodies.MAX_NESTING + 1)
    with pytest.raises(ApiError) as too_deep:
        bodies.parse_json(deep, lone_surrogates=True)
    assert too_deep.value.status == 422


def test_json_bodies_keep_big_integers_and_refuse_deep_nesting() -> None:
    big = 123456789012345678901234567890
    parsed = bodies.parse_json(
        b'{"n": 123456789012345678901234567890, "f": 1.5e30, "l": [-%d]}' % big
    )
    assert parsed == {"n": big, "f": 1.5e30, "l": [-big]} and type(parsed["n"]) is int
    assert bodies.encode(parsed) == b'{"n":%d,"f":1.5e+30,"l":[-%d]}' % (big, big)
    deep = b"[" * (bodies.MAX_NESTING + 1) + b"]" * (bodies.MAX_NESTING + 1)
    with pytest.raises(ApiError) as refused:
        bodies.parse_json(deep)
    assert refused.value.status == 422
    assert bodies.parse_json(b"[" * bodies.MAX_NESTING + b"]" * bodies.MAX_NESTING)


def test_answers_encoded_in_pieces_are_the_same_bytes() -> None:
    answer = {
        "response": "batch",
        "results": {str(i): {"task_id": str(i), "result": "x" * 1000} for i in range(300)},
        "deferred": [str(i) for i in range(1000)],
    }
    assert bodies.encode_in_pieces(answer) == orjson.dumps(answer)
    assert (
        bodies.encode_in_pieces([]) == b"[]" and bodies.encode_in_pieces({"a": [1]}) == b'{"a":[1]}'
    )
