"""Where secrets live on disk, and where the service listens.

Why: the state dir sits in the user's home directory, often on a shared machine (a cluster login
node). A bearer token must never be recoverable from the database (it keeps only a sha256), the
token files must be readable by their owner only whatever the umask, the database (which holds
every payload and result) must not be readable by other local users, and the service must listen
on loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import inspect
import socket
import sqlite3
import stat
from pathlib import Path

import pytest

from globus_compute import state_dir as state_dir_mod
from globus_compute.service import __main__ as service_main
from globus_compute.service import server
from globus_compute.service.store import Store
from globus_compute.service.tokens import hash_token
from tests.support.service import start_service

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.timeout(60)
def test_database_holds_only_token_hashes(tmp_path: Path) -> None:
    """No plaintext token anywhere in the database files (main file, WAL, shared memory)."""
    state = tmp_path / "state"
    svc = start_service(state, host=None)
    try:
        store = Store(state)
        try:
            bob = store.identities.ensure_user("bob")
        finally:
            store.close()
        tokens = {"local": svc.token, "bob": bob}
        # Real traffic with both tokens, so any place a token could be written is exercised.
        for token in tokens.values():
            fid = svc.call(
                "POST", "/v3/functions",
                json={"function_name": "f", "function_code": "10\n01\nabcdefg\n"}, token=token,
            ).json()["function_uuid"]  # fmt: skip
            eid = svc.call("POST", "/v3/endpoints", json={"endpoint_name": "e"}, token=token)
            eid = eid.json()["endpoint_id"]
            sub = svc.call("POST", f"/v3/endpoints/{eid}/submit",
                           json={"tasks": {fid: ["p"]}}, token=token)  # fmt: skip
            assert sub.status_code == 200, sub.text
        db_files = sorted(state.glob(state_dir_mod.DATABASE_NAME + "*"))
        assert state_dir_mod.database_path(state) in db_files
        for path in db_files:
            data = path.read_bytes()
            for name, token in tokens.items():
                assert token.encode() not in data, f"{name}'s token in {path.name}"
        # What is stored is the sha256 of each token.
        with sqlite3.connect(state_dir_mod.database_path(state)) as db:
            stored = dict(db.execute("SELECT name, token_hash FROM users").fetchall())
        assert stored == {name: hash_token(tok) for name, tok in tokens.items()}
        # And nothing else in the state dir but the token files holds a token.
        for path in state.rglob("*"):
            if path.is_file() and path.parent.name != "tokens":
                data = path.read_bytes()
                assert not any(t.encode() in data for t in tokens.values()), path
    finally:
        svc.stop()


@pytest.mark.timeout(60)
def test_token_files_and_database_are_private_even_with_umask_0(tmp_path: Path) -> None:
    """Token files 0600 in a 0700 dir; state dir 0700 and database 0600, under umask 000."""
    state = tmp_path / "state"
    svc = start_service(state, host=None, umask=0)
    try:
        token_file = state_dir_mod.token_path(state)
        assert _mode(token_file) == 0o600
        assert _mode(token_file.parent) == 0o700
        assert _mode(state) == 0o700
        for path in state.glob(state_dir_mod.DATABASE_NAME + "*"):
            assert _mode(path) & 0o077 == 0, f"{path.name} is {oct(_mode(path))}"
    finally:
        svc.stop()
    # A token written later (``globus-compute-local token``) is private too, and a rewrite of
    # an existing file never widens it.
    path = state_dir_mod.token_path(tmp_path / "other", "carol")
    state_dir_mod.write_token_file(path, "t1")
    state_dir_mod.write_token_file(path, "t2")
    assert _mode(path) == 0o600 and path.read_text().strip() == "t2"
    assert _mode(path.parent) == 0o700


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(addr_hex) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1]))
                else:
                    raw = b"".join(
                        bytes.fromhex(addr_hex[i : i + 8])[::-1] for i in range(0, 32, 8)
                    )
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


@pytest.mark.timeout(60)
def test_service_binds_loopback_by_default(tmp_path: Path) -> None:
    """Started without ``--host``, the service listens on 127.0.0.1 only."""
    assert service_main.parse_args([]).host == "127.0.0.1"
    assert inspect.signature(server.serve).parameters["host"].default == "127.0.0.1"
    svc = start_service(tmp_path / "state", host=None)  # no --host
    try:
        assert svc.url.startswith("http://127.0.0.1:")
        port = int(svc.url.rsplit(":", 1)[1])
        if Path("/proc/net/tcp").exists():
            assert _listening_addresses(port) == {"127.0.0.1"}
        # From a non-loopback address of this machine (if it has one), nothing answers.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it picks a route
            outside = probe.getsockname()[0]
        except OSError:
            outside = "127.0.0.1"
        finally:
            probe.close()
        if not outside.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=5).close()
        svc.assert_healthy()
    finally:
        svc.stop()


@pytest.mark.timeout(10)
def test_cli_default_host_is_loopback() -> None:
    """``globus-compute-local serve`` defaults to loopback too (``up`` always passes it)."""
    from globus_compute import cli

    ns = cli.build_parser().parse_args(["serve"])
    assert isinstance(ns, argparse.Namespace) and ns.host == "127.0.0.1"


@pytest.mark.timeout(60)
def test_replaced_token_stops_working_in_the_running_service(tmp_path: Path) -> None:
    """``globus-compute-local token`` after the token file is lost issues a new token; the old
    one must be refused by the service that is already running (it used to stay valid there
    through an in-process cache until a restart)."""
    state = tmp_path / "state"
    svc = start_service(state, host=None)
    try:
        store = Store(state)
        try:
            old = store.identities.ensure_user("carol")
            assert svc.call("GET", "/v2/endpoints", token=old).status_code == 200
            state_dir_mod.token_path(state, "carol").unlink()
            new = store.identities.ensure_user("carol")
        finally:
            store.close()
        assert new != old
        assert svc.call("GET", "/v2/endpoints", token=new).status_code == 200
        refused = svc.call("GET", "/v2/endpoints", token=old)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
    finally:
        svc.stop()
