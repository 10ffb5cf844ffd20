"""Store and access rules of the embedded service, on a temp state dir (no sockets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.access import can_run_function, can_use_endpoint
from globus_compute.service.store import Store
from globus_compute.service.tokens import hash_token

FN_CODE = "10\n01\nabcdefg\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state")
    yield s
    s.close()


def _setup(store: Store, retries: int = 0):
    store.identities.ensure_user("alice")
    alice = store.identities.get_user("alice")
    fid = store.functions.register_function(alice, "f", FN_CODE)
    eid, _ = store.endpoints.register_endpoint(alice, "ep", max_retries=retries)
    return alice, fid, eid


def test_ensure_user_writes_0600_token_and_stores_only_hash(store: Store) -> None:
    identities = store.identities
    token = identities.ensure_user("alice")
    path = state_dir_mod.token_path(store.state_dir, "alice")
    assert state_dir_mod.read_token_file(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (stored,) = store.database.connection.execute(
        "SELECT token_hash FROM users WHERE name='alice'"
    ).fetchone()
    assert stored == hash_token(token) and token not in stored
    assert identities.ensure_user("alice") == token
    assert identities.user_for_token(token).name == "alice"
    assert identities.user_for_token("bogus") is None


def test_ensure_user_replaces_token_when_file_lost(store: Store) -> None:
    identities = store.identities
    old = identities.ensure_user("bob")
    state_dir_mod.token_path(store.state_dir, "bob").unlink()
    new = identities.ensure_user("bob")
    assert new != old
    assert identities.user_for_token(old) is None
    assert identities.user_for_token(new).name == "bob"


def test_function_rules_owner_group_public(store: Store) -> None:
    for name in ("owner", "member", "stranger"):
        store.identities.ensure_user(name)
    owner, member, stranger = (
        store.identities.get_user(n) for n in ("owner", "member", "stranger")
    )
    gid = store.groups.create_group("team", ["member"])
    functions = store.functions
    private = functions.get_function(functions.register_function(owner, "p", FN_CODE))
    grouped = functions.get_function(functions.register_function(owner, "g", FN_CODE, group_id=gid))
    public = functions.get_function(functions.register_function(owner, "x", FN_CODE, public=True))
    groups = {u.name: store.groups.user_groups(u) for u in (owner, member, stranger)}
    assert groups["member"] == {gid}
    assert can_run_function(owner, private, groups["owner"])
    assert not can_run_function(member, private, groups["member"])
    assert can_run_function(member, grouped, groups["member"])
    assert not can_run_function(stranger, grouped, groups["stranger"])
    assert can_run_function(stranger, public, groups["stranger"])
    store.groups.add_group_member(gid, "stranger")
    assert can_run_function(stranger, grouped, store.groups.user_groups(stranger))


def test_endpoint_rules_and_same_name_same_id(store: Store) -> None:
    store.identities.ensure_user("a")
    store.identities.ensure_user("b")
    a, b = store.identities.get_user("a"), store.identities.get_user("b")
    endpoints = store.endpoints
    eid, existed = endpoints.register_endpoint(a, "ep")
    assert not existed
    assert endpoints.register_endpoint(a, "ep") == (eid, True)
    assert endpoints.register_endpoint(b, "ep")[0] != eid
    ep = endpoints.get_endpoint(eid)
    assert can_use_endpoint(a, ep) and not can_use_endpoint(b, ep)
    endpoints.register_endpoint(a, "ep", public=True)
    assert can_use_endpoint(b, endpoints.get_endpoint(eid))
    with pytest.raises(PermissionError):
        endpoints.register_endpoint(b, "other", endpoint_id=eid)


def test_submit_claim_results_roundtrip(store: Store) -> None:
    alice, fid, eid = _setup(store)
    tasks = store.tasks
    tg, tids = tasks.submit_tasks(
        alice.id, eid, None, [(fid, "p1"), (fid, "p2")], result_serializers=["x.Y"]
    )
    assert len(tids) == 2
    docs = tasks.task_documents(alice.id, tids)
    assert {d["status"] for d in docs.values()} == {"waiting-for-ep"}
    claimed = tasks.claim_tasks(eid, 10, lease_s=30)
    assert [c["task_id"] for c in claimed] == tids
    assert claimed[0]["task_buffer"] == FN_CODE + "p1"
    assert claimed[0]["result_serializers"] == ["x.Y"] and claimed[0]["attempt"] == 1
    assert tasks.claim_tasks(eid, 10, lease_s=30) == []
    ok = {"task_id": tids[0], "status": "success", "result": "00\nx\n", "completion_t": "1.5"}
    bad = {
        "task_id": tids[1],
        "status": "failed",
        "exception": "Traceback\nValueError: boom\n",
        "completion_t": "2.5",
        "details": {"os": "Linux"},
    }
    assert tasks.store_results(eid, [ok, bad]) == 2
    assert tasks.store_results(eid, [ok]) == 0  # idempotent
    docs = tasks.task_documents(alice.id, tids)
    assert docs[tids[0]] == {
        "task_id": tids[0],
        "status": "success",
        "result": "00\nx\n",
        "completion_t": "1.5",
    }
    assert docs[tids[1]]["exception"].endswith("ValueError: boom\n")
    assert docs[tids[1]]["details"] == {"os": "Linux"}
    assert [t for t, _ in tasks.task_group(alice.id, tg)] == tids


def test_task_documents_hidden_from_other_identities(store: Store) -> None:
    alice, fid, eid = _setup(store)
    store.identities.ensure_user("mallory")
    mallory = store.identities.get_user("mallory")
    tg, tids = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    assert store.tasks.task_documents(mallory.id, tids) == {}
    assert store.tasks.task_group(mallory.id, tg) is None
    with pytest.raises(PermissionError):
        store.tasks.submit_tasks(mallory.id, eid, tg, [(fid, "p")])


def _expire_all(store: Store) -> None:
    store.database.connection.execute("UPDATE tasks SET lease_expiry = 0 WHERE status = 'running'")


def _heartbeat(store: Store, eid: str, lease_s: float, held: list[str] | None = None) -> bool:
    """What the agent's heartbeat does to the store (``actions.agent.heartbeat``)."""
    stop = store.endpoints.record_heartbeat(eid, {})
    store.leases.renew_leases(eid, lease_s, held)
    return stop


def test_expired_lease_requeues_then_fails_with_endpoint_lost(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=1)
    _, (tid,) = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.tasks.claim_tasks(eid, 1, lease_s=30)
    _expire_all(store)
    failed, requeued = store.leases.expire_leases(lease_s=30)
    assert failed == [] and requeued == {eid: [tid]}
    (again,) = store.tasks.claim_tasks(eid, 1, lease_s=30)
    assert again["attempt"] == 2
    _expire_all(store)
    failed, requeued = store.leases.expire_leases(lease_s=30)
    assert failed == [tid] and requeued == {}
    doc = store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed"
    assert "EndpointLost" in doc["exception"] and "stopped heartbeating" in doc["exception"]
    assert float(doc["completion_t"]) > 0


def test_undelivered_claim_is_requeued_without_counting_an_attempt(store: Store) -> None:
    """Regression: a claim whose answer was lost (the service died mid-answer) stayed leased
    for ever, because every heartbeat renewed every lease of the endpoint."""
    alice, fid, eid = _setup(store, retries=0)
    _, (tid,) = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.tasks.claim_tasks(eid, 1, lease_s=30)  # the agent never sees this answer
    _heartbeat(store, eid, lease_s=30, held=[])  # alive, holding nothing
    _expire_all(store)
    assert store.leases.expire_leases(lease_s=30) == ([], {eid: [tid]})
    (again,) = store.tasks.claim_tasks(eid, 1, lease_s=30)
    assert again["attempt"] == 1  # it never ran: no attempt counted, no EndpointLost


def test_heartbeat_renews_only_the_tasks_the_agent_holds(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=0)
    _, (kept, lost) = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "a"), (fid, "b")])
    store.tasks.claim_tasks(eid, 2, lease_s=30)
    _expire_all(store)
    _heartbeat(store, eid, lease_s=30, held=[kept])
    assert store.leases.expire_leases(lease_s=30) == ([], {eid: [lost]})
    docs = store.tasks.task_documents(alice.id, [kept, lost], mark_retrieved=False)
    assert (docs[kept]["status"], docs[lost]["status"]) == ("running", "waiting-for-ep")


def test_heartbeat_renews_leases_and_reports_stop(store: Store) -> None:
    alice, fid, eid = _setup(store)
    store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.tasks.claim_tasks(eid, 1, lease_s=0.001)
    assert _heartbeat(store, eid, lease_s=60) is False
    assert store.leases.expire_leases(lease_s=30) == ([], {})
    store.endpoints.lock_endpoint(eid)
    assert _heartbeat(store, eid, lease_s=60) is True
    store.endpoints.register_endpoint(alice, "ep")  # an update leaves the stop flag alone ...
    assert _heartbeat(store, eid, lease_s=60) is True
    # ... a new agent process's first heartbeat clears it.
    assert store.endpoints.record_heartbeat(eid, {}, starting=True) is False
    assert _heartbeat(store, eid, lease_s=60) is False


def test_restart_release_fails_held_tasks_without_retries(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=0)
    _, (tid,) = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.tasks.claim_tasks(eid, 1, lease_s=300)
    failed, requeued = store.leases.release_restarted(eid)
    assert failed == [tid] and requeued == {}
    text = store.tasks.task_documents(alice.id, [tid])[tid]["exception"]
    assert "EndpointLost" in text and "was restarted" in text


def test_purge_keeps_unretrieved_and_drops_retrieved_after_retention(store: Store) -> None:
    alice, fid, eid = _setup(store)
    tasks = store.tasks
    _, tids = tasks.submit_tasks(alice.id, eid, None, [(fid, "a"), (fid, "b")])
    tasks.claim_tasks(eid, 2, lease_s=30)
    tasks.store_results(
        eid,
        [{"task_id": t, "status": "success", "result": "00\n", "completion_t": "1"} for t in tids],
    )
    tasks.task_documents(alice.id, tids[:1])  # only the first one is fetched
    # A negative retention puts the cut-off in the future: the fetched result is due now.
    assert tasks.purge_tasks(retention_s=-1.0, unretrieved_ttl_s=3600) == 1
    assert list(tasks.task_documents(alice.id, tids)) == [tids[1]]
    assert tasks.purge_tasks(retention_s=0.0, unretrieved_ttl_s=0.0) == 1


def test_purge_returns_space_to_the_file_system(store: Store, tmp_path: Path) -> None:
    """The database stays bounded: deleted rows shrink the file (incremental auto-vacuum)."""
    alice, fid, eid = _setup(store)
    tasks = store.tasks
    payload = "x" * 4000
    _, tids = tasks.submit_tasks(alice.id, eid, None, [(fid, payload)] * 2000)
    tasks.claim_tasks(eid, 2000, lease_s=30)
    tasks.store_results(
        eid,
        [{"task_id": t, "status": "success", "result": payload, "completion_t": "1"} for t in tids],
    )
    tasks.task_documents(alice.id, tids)
    database = state_dir_mod.database_path(store.state_dir)
    store.database.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = database.stat().st_size
    assert full > 8_000_000  # 2000 payloads and results of 4 kB each
    assert tasks.purge_tasks(retention_s=-1.0, unretrieved_ttl_s=3600) == 2000
    assert database.stat().st_size < full / 10


def test_fail_unfinished_fails_the_tasks_of_a_deleted_endpoint(store: Store) -> None:
    alice, fid, eid = _setup(store)
    _, (tid,) = store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    assert store.tasks.fail_unfinished(eid) == [tid]
    store.endpoints.delete_endpoint(eid)
    assert store.endpoints.get_endpoint(eid) is None
    doc = store.tasks.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed"
    assert doc["exception"].startswith("globus_compute.errors.EndpointLost: ")
    assert tid in doc["exception"] and f"endpoint {eid} was deleted" in doc["exception"]


def test_transaction_joins_an_open_one_and_rolls_back_as_one(store: Store) -> None:
    """A service function's store calls commit together or not at all."""
    alice, fid, eid = _setup(store)
    with pytest.raises(RuntimeError), store.database.transaction():
        store.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
        store.endpoints.lock_endpoint(eid)
        raise RuntimeError("boom")
    count = store.database.connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    assert count == 0
    assert store.endpoints.get_endpoint(eid).stop is False


def test_store_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path)
    token = s.identities.ensure_user("alice")
    alice = s.identities.get_user("alice")
    fid = s.functions.register_function(alice, "f", FN_CODE)
    eid, _ = s.endpoints.register_endpoint(alice, "ep")
    _, tids = s.tasks.submit_tasks(alice.id, eid, None, [(fid, "p")])
    s.close()
    s2 = Store(tmp_path)
    assert s2.identities.user_for_token(token).id == alice.id
    assert list(s2.tasks.task_documents(alice.id, tids)) == tids
    s2.close()


def test_new_token_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a token like "-abc..." broke ``--token TOKEN`` argv (argparse saw an option)."""
    from globus_compute.service import tokens

    drawn = iter(["-dash-first", "_ok-token"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda n: next(drawn))
    assert tokens.new_token() == "_ok-token"
