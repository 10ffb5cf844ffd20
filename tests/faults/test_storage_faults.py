"""Storage trouble under a running service: a full disk, a deleted or replaced database.

Why (issue 16 items 5 and 7): a full disk answered ``500 "Internal service error"`` with no hint
of the cause (and the reference client retried it for 15 s); with ``compute.db`` removed under
a running service, submits kept answering 200, and after a restart none of those tasks existed
and the old tokens were invalid. Now a full disk answers 507 saying so, loses nothing that was
accepted, and recovers when space returns; a database file that is gone or replaced is noticed
at the next write and every request is refused with 503 and the reason, which the log says too.

The full disk is a real one: a small tmpfs mounted over the state dir (root only; skipped
elsewhere, where the unit tests of ``store/database.py`` still check the translation).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from globus_compute.service.store import Store
from tests.support.service import RunningService, start_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FN_CODE = "10\n01\nabcdefg\n"
PAYLOAD = "p" * 256 * 1024


def _target(svc: RunningService) -> tuple[str, str]:
    fid = svc.call(
        "POST", "/v3/functions", json={"function_name": "f", "function_code": FN_CODE}
    ).json()["function_uuid"]
    eid = svc.call("POST", "/v3/endpoints", json={"endpoint_name": "disk"}).json()["endpoint_id"]
    return fid, eid


def _log(svc: RunningService) -> str:
    return (svc.state_dir.parent / f"{svc.state_dir.name}-service.log").read_text()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs, private to its owner, to serve as a state dir."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "state"
    disk.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_answers_507_loses_nothing_and_recovers(small_disk: Path) -> None:
    svc = start_service(small_disk)
    try:
        fid, eid = _target(svc)
        free = os.statvfs(small_disk)
        ballast = small_disk / "ballast"
        ballast.write_bytes(b"\0" * max(0, free.f_bavail * free.f_frsize - 3 * 1024 * 1024))
        accepted: list[str] = []
        refused = None
        for _ in range(100):
            reply = svc.call(
                "POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: [PAYLOAD]}}
            )
            if reply.status_code != 200:
                refused = reply
                break
            accepted += reply.json()["tasks"][fid]
        assert refused is not None, "the disk never filled up"
        assert refused.status_code == 507, refused.text[:300]
        doc = refused.json()
        assert doc["code"] == "INSUFFICIENT_STORAGE" and "disk is full" in doc["message"], doc
        svc.assert_healthy()  # reads still work on a full disk, results included
        full = svc.call("POST", "/v2/batch_status", json={"task_ids": accepted})
        assert full.status_code == 200 and set(full.json()["results"]) == set(accepted)

        ballast.unlink()
        again = svc.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: [PAYLOAD]}})
        assert again.status_code == 200, again.text[:300]
        accepted += again.json()["tasks"][fid]
        found = svc.call("POST", "/v2/batch_status", json={"task_ids": accepted}).json()
        assert set(found["results"]) == set(accepted)  # nothing accepted was lost
    finally:
        svc.stop()


def test_deleted_database_is_noticed_and_never_answered_as_durable(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "state")
    try:
        fid, eid = _target(svc)
        before = svc.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}})
        assert before.status_code == 200, before.text
        (svc.state_dir / "compute.db").unlink()
        after = svc.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}})
        assert after.status_code == 503, after.text[:300]
        doc = after.json()
        assert doc["code"] == "SERVICE_UNAVAILABLE" and "deleted" in doc["message"], doc
        listing = svc.call("GET", "/v2/endpoints")
        assert listing.status_code == 503 and "deleted" in listing.json()["message"]
        assert "was deleted while the service ran" in _log(svc)
        assert not (svc.state_dir / "compute.db").exists()  # not silently recreated
    finally:
        svc.stop()
    # A restart on that state dir starts empty, and says so instead of pretending otherwise.
    again = start_service(tmp_path / "state")
    again.stop()
    assert "has identities but no database" in _log(again)


def test_replaced_database_is_noticed(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "state")
    try:
        fid, eid = _target(svc)
        other = Store(tmp_path / "other")
        other.close()
        os.replace(tmp_path / "other" / "compute.db", svc.state_dir / "compute.db")
        reply = svc.call("POST", f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: ["p"]}})
        assert reply.status_code == 503, reply.text[:300]
        assert "replaced" in reply.json()["message"]
        assert "was replaced while the service ran" in _log(svc)
    finally:
        svc.stop()
