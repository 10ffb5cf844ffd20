"""Store and access rules of the embedded service, on a temp state dir (no sockets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.identity import can_run_function, can_use_endpoint, hash_token
from globus_compute.service.store import Store

FN_CODE = "10\n01\nabcdefg\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state")
    yield s
    s.close()


def _setup(store: Store, retries: int = 0):
    store.ensure_user("alice")
    alice = store.get_user("alice")
    fid = store.register_function(alice, "f", FN_CODE)
    eid, _, _ = store.register_endpoint(
        alice, "ep", metadata={"max_retries_on_system_failure": retries}
    )
    return alice, fid, eid


def test_ensure_user_writes_0600_token_and_stores_only_hash(store: Store) -> None:
    token = store.ensure_user("alice")
    path = state_dir_mod.token_path(store.state_dir, "alice")
    assert state_dir_mod.read_token_file(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (stored,) = store.db.execute("SELECT token_hash FROM users WHERE name='alice'").fetchone()
    assert stored == hash_token(token) and token not in stored
    assert store.ensure_user("alice") == token
    assert store.user_for_token(token).name == "alice"
    assert store.user_for_token("bogus") is None


def test_ensure_user_replaces_token_when_file_lost(store: Store) -> None:
    old = store.ensure_user("bob")
    state_dir_mod.token_path(store.state_dir, "bob").unlink()
    new = store.ensure_user("bob")
    assert new != old
    assert store.user_for_token(old) is None
    assert store.user_for_token(new).name == "bob"


def test_function_rules_owner_group_public(store: Store) -> None:
    for name in ("owner", "member", "stranger"):
        store.ensure_user(name)
    owner, member, stranger = (store.get_user(n) for n in ("owner", "member", "stranger"))
    gid = store.create_group("team", ["member"])
    private = store.get_function(store.register_function(owner, "p", FN_CODE))
    grouped = store.get_function(store.register_function(owner, "g", FN_CODE, group_id=gid))
    public = store.get_function(store.register_function(owner, "x", FN_CODE, public=True))
    groups = {u.name: store.user_groups(u) for u in (owner, member, stranger)}
    assert groups["member"] == {gid}
    assert can_run_function(owner, private, groups["owner"])
    assert not can_run_function(member, private, groups["member"])
    assert can_run_function(member, grouped, groups["member"])
    assert not can_run_function(stranger, grouped, groups["stranger"])
    assert can_run_function(stranger, public, groups["stranger"])
    store.add_group_member(gid, "stranger")
    assert can_run_function(stranger, grouped, store.user_groups(stranger))


def test_endpoint_rules_and_same_name_same_id(store: Store) -> None:
    store.ensure_user("a")
    store.ensure_user("b")
    a, b = store.get_user("a"), store.get_user("b")
    eid, _, _ = store.register_endpoint(a, "ep")
    assert store.register_endpoint(a, "ep")[0] == eid
    assert store.register_endpoint(b, "ep")[0] != eid
    ep = store.get_endpoint(eid)
    assert can_use_endpoint(a, ep) and not can_use_endpoint(b, ep)
    store.register_endpoint(a, "ep", public=True)
    assert can_use_endpoint(b, store.get_endpoint(eid))
    with pytest.raises(PermissionError):
        store.register_endpoint(b, "other", endpoint_id=eid)


def test_submit_claim_results_roundtrip(store: Store) -> None:
    alice, fid, eid = _setup(store)
    tg, tids = store.submit_tasks(
        alice.id, eid, None, [(fid, "p1"), (fid, "p2")], result_serializers=["x.Y"]
    )
    assert len(tids) == 2
    docs = store.task_documents(alice.id, tids)
    assert {d["status"] for d in docs.values()} == {"waiting-for-ep"}
    claimed = store.claim_tasks(eid, 10, lease_s=30)
    assert [c["task_id"] for c in claimed] == tids
    assert claimed[0]["task_buffer"] == FN_CODE + "p1"
    assert claimed[0]["result_serializers"] == ["x.Y"] and claimed[0]["attempt"] == 1
    assert store.claim_tasks(eid, 10, lease_s=30) == []
    ok = {"task_id": tids[0], "status": "success", "result": "00\nx\n", "completion_t": "1.5"}
    bad = {
        "task_id": tids[1],
        "status": "failed",
        "exception": "Traceback\nValueError: boom\n",
        "completion_t": "2.5",
        "details": {"os": "Linux"},
    }
    assert store.store_results(eid, [ok, bad]) == 2
    assert store.store_results(eid, [ok]) == 0  # idempotent
    docs = store.task_documents(alice.id, tids)
    assert docs[tids[0]] == {
        "task_id": tids[0],
        "status": "success",
        "result": "00\nx\n",
        "completion_t": "1.5",
    }
    assert docs[tids[1]]["exception"].endswith("ValueError: boom\n")
    assert docs[tids[1]]["details"] == {"os": "Linux"}
    assert [t for t, _ in store.task_group(alice.id, tg)] == tids


def test_task_documents_hidden_from_other_identities(store: Store) -> None:
    alice, fid, eid = _setup(store)
    store.ensure_user("mallory")
    mallory = store.get_user("mallory")
    tg, tids = store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    assert store.task_documents(mallory.id, tids) == {}
    assert store.task_group(mallory.id, tg) is None
    with pytest.raises(PermissionError):
        store.submit_tasks(mallory.id, eid, tg, [(fid, "p")])


def _expire_all(store: Store) -> None:
    store.db.execute("UPDATE tasks SET lease_expiry = 0 WHERE status = 'running'")


def test_expired_lease_requeues_then_fails_with_endpoint_lost(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=1)
    _, (tid,) = store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.claim_tasks(eid, 1, lease_s=30)
    _expire_all(store)
    failed, requeued = store.expire_leases(lease_s=30)
    assert failed == [] and requeued == {eid: [tid]}
    (again,) = store.claim_tasks(eid, 1, lease_s=30)
    assert again["attempt"] == 2
    _expire_all(store)
    failed, requeued = store.expire_leases(lease_s=30)
    assert failed == [tid] and requeued == {}
    doc = store.task_documents(alice.id, [tid])[tid]
    assert doc["status"] == "failed"
    assert "EndpointLost" in doc["exception"] and "stopped heartbeating" in doc["exception"]
    assert float(doc["completion_t"]) > 0


def test_undelivered_claim_is_requeued_without_counting_an_attempt(store: Store) -> None:
    """Regression: a claim whose answer was lost (the service died mid-answer) stayed leased
    for ever, because every heartbeat renewed every lease of the endpoint."""
    alice, fid, eid = _setup(store, retries=0)
    _, (tid,) = store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.claim_tasks(eid, 1, lease_s=30)  # the agent never sees this answer
    store.heartbeat(eid, {}, lease_s=30, held=[])  # alive, holding nothing
    _expire_all(store)
    assert store.expire_leases(lease_s=30) == ([], {eid: [tid]})
    (again,) = store.claim_tasks(eid, 1, lease_s=30)
    assert again["attempt"] == 1  # it never ran: no attempt counted, no EndpointLost


def test_heartbeat_renews_only_the_tasks_the_agent_holds(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=0)
    _, (kept, lost) = store.submit_tasks(alice.id, eid, None, [(fid, "a"), (fid, "b")])
    store.claim_tasks(eid, 2, lease_s=30)
    _expire_all(store)
    store.heartbeat(eid, {}, lease_s=30, held=[kept])
    assert store.expire_leases(lease_s=30) == ([], {eid: [lost]})
    docs = store.task_documents(alice.id, [kept, lost], mark_retrieved=False)
    assert (docs[kept]["status"], docs[lost]["status"]) == ("running", "waiting-for-ep")


def test_heartbeat_renews_leases_and_reports_stop(store: Store) -> None:
    alice, fid, eid = _setup(store)
    store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.claim_tasks(eid, 1, lease_s=0.001)
    assert store.heartbeat(eid, {"total_workers": 2}, lease_s=60) is False
    assert store.expire_leases(lease_s=30) == ([], {})
    store.lock_endpoint(eid)
    assert store.heartbeat(eid, {}, lease_s=60) is True
    store.register_endpoint(alice, "ep")  # re-registration clears the stop flag
    assert store.heartbeat(eid, {}, lease_s=60) is False


def test_reregistration_releases_held_tasks(store: Store) -> None:
    alice, fid, eid = _setup(store, retries=0)
    _, (tid,) = store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    store.claim_tasks(eid, 1, lease_s=300)
    _, failed, _ = store.register_endpoint(alice, "ep", metadata={})
    assert failed == [tid]
    assert "EndpointLost" in store.task_documents(alice.id, [tid])[tid]["exception"]


def test_purge_keeps_unretrieved_and_drops_retrieved_after_retention(store: Store) -> None:
    alice, fid, eid = _setup(store)
    _, tids = store.submit_tasks(alice.id, eid, None, [(fid, "a"), (fid, "b")])
    store.claim_tasks(eid, 2, lease_s=30)
    store.store_results(
        eid,
        [{"task_id": t, "status": "success", "result": "00\n", "completion_t": "1"} for t in tids],
    )
    store.task_documents(alice.id, tids[:1])  # only the first one is fetched
    # A negative retention puts the cut-off in the future: the fetched result is due now.
    assert store.purge_tasks(retention_s=-1.0, unretrieved_ttl_s=3600) == 1
    assert list(store.task_documents(alice.id, tids)) == [tids[1]]
    assert store.purge_tasks(retention_s=0.0, unretrieved_ttl_s=0.0) == 1


def test_purge_returns_space_to_the_file_system(store: Store, tmp_path: Path) -> None:
    """The database stays bounded: deleted rows shrink the file (incremental auto-vacuum)."""
    alice, fid, eid = _setup(store)
    payload = "x" * 4000
    _, tids = store.submit_tasks(alice.id, eid, None, [(fid, payload)] * 2000)
    store.claim_tasks(eid, 2000, lease_s=30)
    store.store_results(
        eid,
        [{"task_id": t, "status": "success", "result": payload, "completion_t": "1"} for t in tids],
    )
    store.task_documents(alice.id, tids)
    database = state_dir_mod.database_path(store.state_dir)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = database.stat().st_size
    assert full > 8_000_000  # 2000 payloads and results of 4 kB each
    assert store.purge_tasks(retention_s=-1.0, unretrieved_ttl_s=3600) == 2000
    assert database.stat().st_size < full / 10


def test_delete_endpoint_fails_unfinished_tasks(store: Store) -> None:
    alice, fid, eid = _setup(store)
    _, (tid,) = store.submit_tasks(alice.id, eid, None, [(fid, "p")])
    assert store.delete_endpoint(eid) == [tid]
    assert store.get_endpoint(eid) is None
    assert store.task_documents(alice.id, [tid])[tid]["status"] == "failed"


def test_store_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path)
    token = s.ensure_user("alice")
    alice = s.get_user("alice")
    fid = s.register_function(alice, "f", FN_CODE)
    eid, _, _ = s.register_endpoint(alice, "ep")
    _, tids = s.submit_tasks(alice.id, eid, None, [(fid, "p")])
    s.close()
    s2 = Store(tmp_path)
    assert s2.user_for_token(token).id == alice.id
    assert list(s2.task_documents(alice.id, tids)) == tids
    s2.close()


def test_new_token_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a token like "-abc..." broke ``--token TOKEN`` argv (argparse saw an option)."""
    from globus_compute.service import store as store_mod

    drawn = iter(["-dash-first", "_ok-token"])
    monkeypatch.setattr(store_mod.secrets, "token_urlsafe", lambda n: next(drawn))
    assert store_mod.new_token() == "_ok-token"
