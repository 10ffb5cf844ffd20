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


def test_reported_details_name_the_reporting_endpoint_whatever_the_agent_says(
    ctx: ServiceContext,
) -> None:
    """Submitters trust a dill result only from their own endpoints, by ``details.endpoint_id``:
    an agent claiming to be another endpoint must not be believed."""
    alice, fid, eid = _setup(ctx)
    mallory = _user(ctx, "mallory")
    mal_ep = endpoints.register_endpoint(ctx, mallory, "public", public=True)
    (tid,) = tasks.submit(ctx, alice, mal_ep, {"tasks": {fid: ["a"]}}).tasks[fid]
    _claim(ctx, mallory, mal_ep)
    forged = {"task_id": tid, "status": "success", "result": "00\nx\n", "completion_t": "1",
              "details": {"endpoint_id": eid, "os": "Linux"}}  # fmt: skip
    assert agent.report_results(ctx, mallory, mal_ep, {"results": [forged]}) == (1, 0)
    doc = ctx.store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["details"] == {"endpoint_id": mal_ep, "os": "Linux"}


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


def test_a_result_that_is_not_unicode_fails_only_its_own_task(ctx: ServiceContext) -> None:
    """Regression (issue 14, item 5): one task's exception text with a lone surrogate made the
    service refuse the whole batch, and the agent failed every task in it."""
    alice, fid, eid = _setup(ctx)
    ok, bad_text, bad_value = tasks.submit(
        ctx, alice, eid, {"tasks": {fid: ["a", "b", "c"]}}
    ).tasks[fid]
    _claim(ctx, alice, eid)
    body = {
        "results": [
            {"task_id": ok, "status": "success", "result": "00\nx\n", "completion_t": "1"},
            {
                "task_id": bad_text,
                "status": "failed",
                "exception": "ValueError: bad \ud800\n",
                "completion_t": "2",
                "details": {"os": "\udfff"},
            },
            {
                "task_id": bad_value,
                "status": "success",
                "result": "11\n\ud800",
                "completion_t": "3",
            },
        ]
    }
    assert agent.report_results(ctx, alice, eid, body) == (3, 0)
    docs = ctx.store.tasks.task_documents(alice.id, [ok, bad_text, bad_value])
    assert docs[ok]["result"] == "00\nx\n"
    assert docs[bad_text]["exception"].startswith("ValueError: bad \\ud800\n")
    assert "not valid Unicode" in docs[bad_text]["exception"]
    assert "details" not in docs[bad_text]
    assert docs[bad_value]["status"] == "failed"
    assert "cannot store" in docs[bad_value]["exception"]


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


def _start_agent(ctx: ServiceContext, user: User, eid: str) -> agent.HeartbeatReply:
    """The first heartbeat of a new agent process."""
    return agent.heartbeat(ctx, user, eid, {"status": {}, "held": [], "phase": "starting"})


def test_a_new_agent_process_releases_held_tasks_and_wakes_both_sides(
    ctx: ServiceContext,
) -> None:
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 1})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _notified(ctx).clear()
    # A new agent process: the task it never finished is queued again (one retry allowed) ...
    _start_agent(ctx, alice, eid)
    assert _status(ctx, alice, tid) == "waiting-for-ep"
    assert _notified(ctx) == [("endpoint", eid)]
    (again,) = _claim(ctx, alice, eid)
    assert again["attempt"] == 2
    _notified(ctx).clear()
    # ... and after its last attempt it fails, and its waiters are woken.
    _start_agent(ctx, alice, eid)
    doc = ctx.store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed"
    assert "EndpointLost" in doc["exception"] and "was restarted" in doc["exception"]
    assert _notified(ctx) == [("task", tid)]


def test_registering_again_takes_no_task_and_keeps_what_it_leaves_out(
    ctx: ServiceContext,
) -> None:
    """Regression (issue 14, items 3 and 4): an owner's update failed every task its running
    agent held, and the agent's registration reset the owner's settings."""
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 2})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _notified(ctx).clear()
    update = {"display_name": "Mine", "public": True, "allowed_functions": [fid]}
    assert endpoints.register_endpoint(ctx, alice, "ep", endpoint_id=eid, **update) == eid
    assert _status(ctx, alice, tid) == "running"
    assert _notified(ctx) == []
    # The agent registers again (as at each start): metadata only.
    endpoints.register_endpoint(ctx, alice, "ep", metadata={"hostname": "h"})
    ep = ctx.store.endpoints.get_endpoint(eid)
    assert ep is not None
    assert (ep.display_name, ep.public, ep.allowed_functions) == ("Mine", True, [fid])
    assert ep.metadata == {"hostname": "h"}
    assert _status(ctx, alice, tid) == "running"
    # The retry setting is kept when the metadata does not say (two retries: requeued).
    _start_agent(ctx, alice, eid)
    assert _status(ctx, alice, tid) == "waiting-for-ep"


@pytest.mark.parametrize("retries", [-1, 1001, True, "3", 2.0])
def test_register_ignores_retry_settings_out_of_range(ctx: ServiceContext, retries: Any) -> None:
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": retries})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    _start_agent(ctx, alice, eid)
    assert _status(ctx, alice, tid) == "failed"  # no retry: the setting counted as 0


def test_register_refusals(ctx: ServiceContext) -> None:
    alice, _, eid = _setup(ctx)
    bob = _user(ctx, "bob")
    other = endpoints.register_endpoint(ctx, alice, "other")
    cases = [
        (lambda: endpoints.register_endpoint(ctx, alice, ""), 422),
        (lambda: endpoints.register_endpoint(ctx, alice, "x", allowed_functions=["f"]), 422),
        (lambda: endpoints.register_endpoint(ctx, alice, "x", endpoint_id="nope"), 404),
        (lambda: endpoints.register_endpoint(ctx, bob, "x", endpoint_id=eid), 404),
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
    reply = agent.heartbeat(ctx, alice, eid, {"status": {"total_workers": 1}, "held": [kept]})
    assert reply == agent.HeartbeatReply(stop=False, drop=[])
    assert endpoints.endpoint_status(ctx, alice, eid).details["total_workers"] == 1
    _notified(ctx).clear()
    assert sweep.release_expired_leases(ctx) == ([], {eid: [lost]})
    assert _notified(ctx) == [("endpoint", eid)]
    assert (_status(ctx, alice, kept), _status(ctx, alice, lost)) == ("running", "waiting-for-ep")
    endpoints.lock_endpoint(ctx, alice, eid)
    assert agent.heartbeat(ctx, alice, eid, {"status": {}}).stop is True
    assert _start_agent(ctx, alice, eid).stop is False  # a new agent process clears the flag
    for body in ({"status": [], "held": [kept]}, {"status": {}, "phase": "paused"}):
        with pytest.raises(ApiError) as refused:
            agent.heartbeat(ctx, alice, eid, body)
        assert refused.value.status == 422


def test_heartbeat_tells_the_agent_to_drop_held_tasks_already_resolved(
    ctx: ServiceContext,
) -> None:
    """Regression (issue 14, item 9): an agent frozen past its lease ran, once thawed, the
    tasks the service had already failed with EndpointLost."""
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 0})
    submitted = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["a", "b", "c"]}})
    failed, requeued, running = submitted.tasks[fid]
    _claim(ctx, alice, eid)
    db = ctx.store.database.connection
    db.execute("UPDATE tasks SET status = 'failed', exception = 'x' WHERE id = ?", (failed,))
    db.execute("UPDATE tasks SET status = 'waiting-for-ep' WHERE id = ?", (requeued,))
    unknown = "00000000-0000-0000-0000-000000000000"
    held = [failed, requeued, running, unknown]
    reply = agent.heartbeat(ctx, alice, eid, {"status": {}, "held": held})
    # The re-queued task has not run again: the agent may still run it; its result counts.
    assert reply.drop == [failed, unknown]


def test_goodbye_makes_the_endpoint_offline_and_hands_back_what_it_held(
    ctx: ServiceContext,
) -> None:
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 0})
    kept, abandoned = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["a", "b"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    agent.heartbeat(ctx, alice, eid, {"status": {}, "held": [kept, abandoned]})
    assert endpoints.endpoint_status(ctx, alice, eid).online
    _notified(ctx).clear()
    agent.heartbeat(ctx, alice, eid, {"status": {}, "held": [abandoned], "phase": "stopping"})
    status = endpoints.endpoint_status(ctx, alice, eid)
    assert not status.online and status.last_heartbeat is not None
    doc = ctx.store.tasks.task_documents(alice.id, [abandoned])[abandoned]
    assert "EndpointLost" in doc["exception"] and "was stopped" in doc["exception"]
    assert _notified(ctx) == [("task", abandoned)]
    assert _status(ctx, alice, kept) == "running"  # not listed: its lease runs out as usual


def test_a_result_for_a_requeued_task_not_yet_rerun_counts(ctx: ServiceContext) -> None:
    """The agent finished the task; its lease was released meanwhile (re-queued, one retry
    allowed) and nobody ran it again: the late result resolves it, and it runs no more."""
    alice, fid, eid = _setup(ctx, metadata={"max_retries_on_system_failure": 1})
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    ctx.store.database.connection.execute("UPDATE tasks SET lease_expiry = 0")
    ctx.store.database.connection.execute("UPDATE endpoints SET last_heartbeat = 0")
    assert sweep.release_expired_leases(ctx) == ([], {eid: [tid]})
    result = {"task_id": tid, "status": "success", "result": "00\nx\n", "completion_t": "1"}
    assert agent.report_results(ctx, alice, eid, {"results": [result]}) == (1, 0)
    assert _status(ctx, alice, tid) == "success"
    assert _claim(ctx, alice, eid) == []


def test_service_start_renews_every_lease(ctx: ServiceContext) -> None:
    """Regression (issue 14, item 1): a service down longer than the lease failed every
    running task at its restart, blaming the endpoints for its own outage."""
    alice, fid, eid = _setup(ctx)
    (tid,) = tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}}).tasks[fid]
    _claim(ctx, alice, eid)
    db = ctx.store.database.connection
    db.execute("UPDATE tasks SET lease_expiry = 0")
    db.execute("UPDATE endpoints SET last_heartbeat = 0")  # silent since long before the outage
    assert sweep.restart_lease_clocks(ctx) == 1
    assert sweep.release_expired_leases(ctx) == ([], {})
    assert _status(ctx, alice, tid) == "running"


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


def test_deleted_endpoint_id_is_never_registered_by_another_identity(ctx: ServiceContext) -> None:
    """Regression (issue 15): after alice deleted her endpoint, mallory registered its id by PUT
    as her own public endpoint and received alice's next submit to it."""
    alice, fid, eid = _setup(ctx)
    mallory = _user(ctx, "mallory")
    endpoints.delete_endpoint(ctx, alice, eid)
    with pytest.raises(ApiError) as refused:
        endpoints.register_endpoint(ctx, mallory, "mine", endpoint_id=eid, public=True)
    assert (refused.value.status, refused.value.message) == (404, f"Endpoint {eid} not found")
    assert ctx.store.endpoints.get_endpoint(eid) is None
    with pytest.raises(ApiError) as submit:
        tasks.submit(ctx, alice, eid, {"tasks": {fid: ["p"]}})
    assert submit.value.status == 404  # alice's submit reaches nobody's endpoint
    # Its owner may bring the id back (an agent restarted after a delete).
    assert endpoints.register_endpoint(ctx, alice, "ep", endpoint_id=eid) == eid


def test_put_on_a_foreign_private_id_answers_like_get_on_an_unknown_one(
    ctx: ServiceContext,
) -> None:
    """Regression (issue 15): PUT answered 403 where GET answered 404, revealing the id."""
    _alice, _fid, eid = _setup(ctx)
    mallory = _user(ctx, "mallory")
    with pytest.raises(ApiError) as put:
        endpoints.register_endpoint(ctx, mallory, "mine", endpoint_id=eid)
    with pytest.raises(ApiError) as get:
        endpoints.endpoint_status(ctx, mallory, eid)
    assert (put.value.status, put.value.code, put.value.message) == (
        get.value.status, get.value.code, get.value.message)  # fmt: skip
