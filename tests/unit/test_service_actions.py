"""The service functions (``globus_compute.service.actions``) on a temp store, without HTTP.

Each test checks what a function stores, what it answers or refuses, and whom it wakes: the
notifier here records every key it is told about, and still wakes parked long polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from globus_compute.service.actions import agent, endpoints, identities, sweep, tasks
from globus_compute.service.config import ServiceConfig
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import ApiError
from globus_compute.service.notify import Listener, Notifier
from globus_compute.service.records import User
from globus_compute.service.store import Store

pytestmark = pytest.mark.timeout(30)

FN_CODE = "10\n01\nabcdefg\n"


class RecordingNotifier(Notifier):
    """A real notifier that also records what it was told, and signals when a request parks."""

    def __init__(self) -> None:
        super().__init__()
        self.notified: list[Hashable] = []
        self.parked: asyncio.Event | None = None

    def notify(self, keys: Iterable[Hashable]) -> None:
        keys = list(keys)
        self.notified.extend(keys)
        super().notify(keys)

    def listen(self, keys: Iterable[Hashable]) -> Listener:
        listener = super().listen(keys)
        parked, wait = self.parked, listener.wait
        if parked is not None:

            async def signalling_wait(timeout: float) -> bool:
                parked.set()
                return await wait(timeout)

            listener.wait = signalling_wait  # type: ignore[method-assign]
        return listener


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    config = ServiceConfig(state_dir=tmp_path / "state", lease_s=30.0)
    store = Store(config.state_dir)
    yield ServiceContext(config=config, store=store, notifier=RecordingNotifier())
    store.close()


def _notified(ctx: ServiceContext) -> list[Hashable]:
    assert isinstance(ctx.notifier, RecordingNotifier)
    return ctx.notifier.notified


def _user(ctx: ServiceContext, name: str) -> User:
    ctx.store.identities.ensure_user(name)
    user = ctx.store.identities.get_user(name)
    assert user is not None
    return user


def _setup(ctx: ServiceContext, metadata: dict[str, Any] | None = None) -> tuple[User, str, str]:
    alice = _user(ctx, "alice")
    fid = ctx.store.functions.register_function(alice, "f", FN_CODE)
    eid = endpoints.register_endpoint(ctx, alice, "ep", metadata=metadata)
    _notified(ctx).clear()
    return alice, fid, eid


def _status(ctx: ServiceContext, user: User, tid: str) -> str:
    return ctx.store.tasks.task_documents(user.id, [tid], mark_retrieved=False)[tid]["status"]


async def _not_connected() -> bool:
    return False


def _claim(ctx: ServiceContext, user: User, eid: str, **body: Any) -> list:
    return asyncio.run(agent.claim(ctx, user, eid, {"max_tasks": 10, **body}, _not_connected))


# -- submit --------------------------------------------------------------------------------


def test_submit_queues_tasks_and_wakes_only_that_endpoint(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    sent_key = fid.upper()  # ids are accepted in any case and answered as they were sent
    submitted = tasks.submit(ctx, alice, eid, {"tasks": {sent_key: ["p1", "p2"]}})
    assert submitted.endpoint_id == eid
    assert list(submitted.tasks) == [sent_key] and len(submitted.tasks[sent_key]) == 2
    assert _notified(ctx) == [("endpoint", eid)]
    for tid in submitted.tasks[sent_key]:
        assert _status(ctx, alice, tid) == "waiting-for-ep"
    claimed = _claim(ctx, alice, eid)
    assert [c["function_id"] for c in claimed] == [fid, fid]
    assert claimed[0]["task_buffer"] == FN_CODE + "p1"


def test_submit_runs_group_functions_for_members_only(ctx: ServiceContext) -> None:
    alice, _, _ = _setup(ctx)
    bob, mallory = _user(ctx, "bob"), _user(ctx, "mallory")
    gid = ctx.store.groups.create_group("team", ["alice", "bob"])
    shared = ctx.store.functions.register_function(alice, "g", FN_CODE, group_id=gid)
    public_ep = endpoints.register_endpoint(ctx, alice, "open", public=True)
    body = {"tasks": {shared: ["p"]}}
    assert tasks.submit(ctx, bob, public_ep, body).tasks[shared]
    with pytest.raises(ApiError) as refused:
        tasks.submit(ctx, mallory, public_ep, body)
    assert (refused.value.status, refused.value.code) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body, status",
    [
        ({"tasks": {}}, 422),
        ({"tasks": {"not-a-uuid": ["p"]}}, 422),
        ({"tasks": {"FID": [1]}}, 422),
        ({"tasks": {"FID": []}}, 422),
        ({"tasks": {"FID": ["p"]}, "result_serializers": "x"}, 422),
        ({"tasks": {"FID": ["p"]}, "resource_specification": []}, 422),
        ({"tasks": {"00000000-0000-0000-0000-000000000000": ["p"]}}, 404),
    ],
)
def test_submit_refuses_bad_bodies_before_storing_or_waking(
    ctx: ServiceContext, body: dict[str, Any], status: int
) -> None:
    alice, fid, eid = _setup(ctx)
    body = {**body, "tasks": {k.replace("FID", fid): v for k, v in body["tasks"].items()}}
    with pytest.raises(ApiError) as refused:
        tasks.submit(ctx, alice, eid, body)
    assert refused.value.status == status
    assert ctx.store.database.connection.execute("SELECT count(*) FROM tasks").fetchone() == (0,)
    assert _notified(ctx) == []


def test_submit_access_rules(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    mallory = _user(ctx, "mallory")
    own_fid = ctx.store.functions.register_function(mallory, "m", FN_CODE)
    with pytest.raises(ApiError) as hidden:  # alice's private endpoint: as if it did not exist
        tasks.submit(ctx, mallory, eid, {"tasks": {own_fid: ["p"]}})
    assert hidden.value.status == 404 and eid in hidden.value.message
    strict = endpoints.register_endpoint(ctx, alice, "strict", allowed_functions=[])
    with pytest.raises(ApiError) as outside:
        tasks.submit(ctx, alice, strict, {"tasks": {fid: ["p"]}})
    assert outside.value.status == 403
    group = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).task_group_id
    mine = endpoints.register_endpoint(ctx, mallory, "mine")
    with pytest.raises(ApiError) as foreign_group:
        tasks.submit(ctx, mallory, mine, {"tasks": {own_fid: ["p"]}, "task_group_id": group})
    assert foreign_group.value.status == 403


# -- claim ---------------------------------------------------------------------------------


def test_claim_leases_queued_tasks_at_once(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    (claimed,) = _claim(ctx, alice, eid, wait_s=20.0)
    assert (claimed["task_id"], claimed["attempt"]) == (tid, 1)
    assert _status(ctx, alice, tid) == "running"
    assert _claim(ctx, alice, eid) == []


def test_claim_long_poll_is_woken_by_a_submit(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    notifier = ctx.notifier
    assert isinstance(notifier, RecordingNotifier)

    async def scenario() -> tuple[list, float]:
        notifier.parked = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        claim = asyncio.create_task(
            agent.claim(ctx, alice, eid, {"max_tasks": 5, "wait_s": 25.0}, _not_connected)
        )
        await asyncio.wait_for(notifier.parked.wait(), 5)
        tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}})
        claimed = await asyncio.wait_for(claim, 10)
        return claimed, loop.time() - started

    claimed, elapsed = asyncio.run(scenario())
    assert len(claimed) == 1 and elapsed < 10  # woken, not timed out after 25 s


def test_claim_of_a_caller_that_hung_up_takes_nothing(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    notifier = ctx.notifier
    assert isinstance(notifier, RecordingNotifier)

    async def hung_up() -> bool:
        return True

    async def scenario() -> tuple[list, str]:
        notifier.parked = asyncio.Event()
        claim = asyncio.create_task(
            agent.claim(ctx, alice, eid, {"max_tasks": 5, "wait_s": 25.0}, hung_up)
        )
        await asyncio.wait_for(notifier.parked.wait(), 5)
        (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
        return await asyncio.wait_for(claim, 10), tid

    claimed, tid = asyncio.run(scenario())
    assert claimed == [] and _status(ctx, alice, tid) == "waiting-for-ep"


def test_claim_refuses_bad_bodies_and_other_identities(ctx: ServiceContext) -> None:
    alice, _, eid = _setup(ctx)
    bob = _user(ctx, "bob")
    for body in ({"max_tasks": 0}, {"max_tasks": True}, {"max_tasks": 1, "wait_s": -1}):
        with pytest.raises(ApiError) as refused:
            asyncio.run(agent.claim(ctx, alice, eid, body, _not_connected))
        assert refused.value.status == 422
    with pytest.raises(ApiError) as stranger:
        asyncio.run(agent.claim(ctx, bob, eid, {"max_tasks": 1}, _not_connected))
    assert stranger.value.status == 404


# -- results -------------------------------------------------------------------------------


def test_report_results_stores_them_and_wakes_the_tasks_waiters(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    ok, bad = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["a", "b"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _notified(ctx).clear()
    body = {
        "results": [
            {"task_id": ok.upper(), "status": "success", "result": "00\nx\n", "completion_t": 1.5},
            {"task_id": bad, "status": "failed", "exception": "boom\n", "completion_t": "2"},
        ]
    }
    assert agent.report_results(ctx, alice, eid, body) == (2, 0)
    assert _notified(ctx) == [("task", ok), ("task", bad)]
    docs = ctx.store.tasks.task_documents(alice.id, [ok, bad])
    assert docs[ok] == {
        "task_id": ok,
        "status": "success",
        "result": "00\nx\n",
        "completion_t": "1.5",
    }
    assert docs[bad]["exception"] == "boom\n"
    assert agent.report_results(ctx, alice, eid, body) == (0, 2)  # idempotent


@pytest.mark.parametrize(
    "result",
    [
        "not an object",
        {"task_id": "nope", "status": "success", "result": "r", "completion_t": "1"},
        {"status": "success", "result": "r", "completion_t": None},
        {"status": "success", "completion_t": "1"},
        {"status": "failed", "completion_t": "1"},
        {"status": "running", "result": "r", "completion_t": "1"},
        {"status": "success", "result": "r", "completion_t": "1", "details": []},
    ],
)
def test_report_results_refuses_malformed_results_and_stores_none(
    ctx: ServiceContext, result: Any
) -> None:
    alice, fid, eid = _setup(ctx)
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _notified(ctx).clear()
    good = {"task_id": tid, "status": "success", "result": "r", "completion_t": "1"}
    if isinstance(result, dict):
        result = {"task_id": tid, **result}
    with pytest.raises(ApiError) as refused:
        agent.report_results(ctx, alice, eid, {"results": [good, result]})
    assert refused.value.status == 422
    assert _status(ctx, alice, tid) == "running" and _notified(ctx) == []


def test_batch_status_wait_is_woken_by_a_reported_result(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    notifier = ctx.notifier
    assert isinstance(notifier, RecordingNotifier)

    async def scenario() -> tasks.BatchStatus:
        notifier.parked = asyncio.Event()
        status = asyncio.create_task(tasks.batch_status(ctx, alice, {"task_ids": [tid]}, 25.0))
        await asyncio.wait_for(notifier.parked.wait(), 5)
        result = {"task_id": tid, "status": "success", "result": "r", "completion_t": "1"}
        agent.report_results(ctx, alice, eid, {"results": [result]})
        return await asyncio.wait_for(status, 10)

    assert asyncio.run(scenario()).results[tid]["status"] == "success"


# -- registration, heartbeat, deletion, expiry -----------------------------------------------


def test_register_again_releases_held_tasks_and_wakes_both_sides(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 1})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _notified(ctx).clear()
    metadata = {"max_retries_on_system_failure": 1}
    # A new agent process: the task it never finished is queued again (one retry allowed) ...
    assert endpoints.register_endpoint(ctx, alice, "ep", metadata=metadata) == eid
    assert _status(ctx, alice, tid) == "waiting-for-ep"
    assert _notified(ctx) == [("endpoint", eid)]
    (again,) = _claim(ctx, alice, eid)
    assert again["attempt"] == 2
    _notified(ctx).clear()
    # ... and after its last attempt it fails, and its waiters are woken.
    endpoints.register_endpoint(ctx, alice, "ep", metadata=metadata)
    doc = ctx.store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed"
    assert "EndpointLost" in doc["exception"] and "was restarted" in doc["exception"]
    assert _notified(ctx) == [("task", tid)]


@pytest.mark.parametrize("retries", [-1, 1001, True, "3", 2.0])
def test_register_ignores_retry_settings_out_of_range(ctx: ServiceContext, retries: Any) -> None:
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": retries})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    endpoints.register_endpoint(ctx, alice, "ep")
    assert _status(ctx, alice, tid) == "failed"  # no retry: the setting counted as 0


def test_register_refusals(ctx: ServiceContext) -> None:
    alice, _, eid = _setup(ctx)
    bob = _user(ctx, "bob")
    other = endpoints.register_endpoint(ctx, alice, "other")
    cases = [
        (lambda: endpoints.register_endpoint(ctx, alice, ""), 422),
        (lambda: endpoints.register_endpoint(ctx, alice, "x", allowed_functions=["f"]), 422),
        (lambda: endpoints.register_endpoint(ctx, alice, "x", endpoint_id="nope"), 404),
        (lambda: endpoints.register_endpoint(ctx, bob, "x", endpoint_id=eid), 403),
        (lambda: endpoints.register_endpoint(ctx, alice, "ep", endpoint_id=other), 409),
    ]
    for call, status in cases:
        with pytest.raises(ApiError) as refused:
            call()
        assert refused.value.status == status, refused.value.message
    assert _notified(ctx) == []


def test_heartbeat_renews_held_leases_and_reports_the_stop_flag(ctx: ServiceContext) -> None:
    alice, fid, eid = _setup(ctx)
    kept, lost = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["a", "b"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    ctx.store.database.connection.execute("UPDATE tasks SET lease_expiry = 0")
    assert (
        agent.heartbeat(ctx, alice, eid, {"status": {"total_workers": 1}, "held": [kept]}) is False
    )
    assert endpoints.endpoint_status(ctx, alice, eid).details["total_workers"] == 1
    _notified(ctx).clear()
    assert sweep.release_expired_leases(ctx) == ([], {eid: [lost]})
    assert _notified(ctx) == [("endpoint", eid)]
    assert (_status(ctx, alice, kept), _status(ctx, alice, lost)) == ("running", "waiting-for-ep")
    endpoints.lock_endpoint(ctx, alice, eid)
    assert agent.heartbeat(ctx, alice, eid, {"status": {}}) is True
    with pytest.raises(ApiError) as refused:
        agent.heartbeat(ctx, alice, eid, {"status": [], "held": [kept]})
    assert refused.value.status == 422


def test_delete_endpoint_fails_its_unfinished_tasks_and_wakes_their_waiters(
    ctx: ServiceContext,
) -> None:
    alice, fid, eid = _setup(ctx)
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    bob = _user(ctx, "bob")
    with pytest.raises(ApiError) as hidden:
        endpoints.delete_endpoint(ctx, bob, eid)
    assert hidden.value.status == 404
    _notified(ctx).clear()
    endpoints.delete_endpoint(ctx, alice, eid)
    assert ctx.store.endpoints.get_endpoint(eid) is None
    doc = ctx.store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed" and f"endpoint {eid} was deleted" in doc["exception"]
    assert _notified(ctx) == [("task", tid), ("endpoint", eid)]


def test_public_endpoint_is_visible_to_others_but_managed_by_its_owner(ctx: ServiceContext) -> None:
    alice, _, _ = _setup(ctx)
    bob = _user(ctx, "bob")
    public = endpoints.register_endpoint(ctx, alice, "open", public=True)
    assert not endpoints.endpoint_status(ctx, bob, public).online
    assert [e.id for e in endpoints.list_endpoints(ctx, bob, "any")] == [public]
    assert endpoints.list_endpoints(ctx, bob) == []
    for manage in (endpoints.lock_endpoint, endpoints.delete_endpoint):
        with pytest.raises(ApiError) as refused:
            manage(ctx, bob, public)
        assert refused.value.status == 403


def test_authenticate_knows_tokens_and_refuses_others(ctx: ServiceContext) -> None:
    token = ctx.store.identities.ensure_user("alice")
    assert identities.authenticate(ctx, token).name == "alice"
    with pytest.raises(ApiError) as refused:
        identities.authenticate(ctx, token + "x")
    assert refused.value.status == 401
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}
