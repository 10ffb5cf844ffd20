"""Fixtures for the security and bad-input tests: the real service on a real loopback port.

The service runs as ``python -m globus_compute.service`` in its own process, exactly as users run
it, so a crash or a hang caused by a hostile request shows up as a dead process or a failed
health check instead of being hidden inside the test process. Extra identities and groups are
created through :class:`globus_compute.service.store.Store` on the same state dir (SQLite WAL lets
the test process and the service share the database).
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.store import Store

READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0


@dataclass
class Service:
    """A running service subprocess, its URL and the default identity's token."""

    url: str
    token: str
    state_dir: Path
    proc: subprocess.Popen[str]
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, token: str | None = "", **kw: Any) -> requests.Response:
        """One request; ``token=""`` means the default identity, ``None`` means no header."""
        tok = self.token if token == "" else token
        headers = dict(kw.pop("headers", {}) or {})
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        return self.session.request(
            method, self.url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kw
        )

    def assert_healthy(self) -> None:
        """The process is alive and both an open and an authenticated request work."""
        assert self.proc.poll() is None, f"service exited with {self.proc.returncode}"
        version = self.call("GET", "/v2/version", params={"service": "all"})
        assert version.status_code == 200, version.text
        assert "min_sdk_version" in version.json()
        listing = self.call("GET", "/v2/endpoints")
        assert listing.status_code == 200, listing.text
        assert isinstance(listing.json(), list)

    def stop(self) -> int:
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode


def start_service(state_dir: Path, *extra_args: str, umask: int = -1) -> Service:
    """Start the service on port 0 (default host) and wait, with a deadline, for READY."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "globus_compute.service", "--port", "0",
         "--state-dir", str(state_dir), *extra_args],
        stdout=subprocess.PIPE,
        text=True,
        umask=umask,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    line = ""
    while not line and (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"service did not become ready: {line!r}")
    token = state_dir_mod.read_token_file(state_dir_mod.token_path(state_dir))
    assert token
    return Service(line.split()[1], token, state_dir, proc)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service per test module (fuzzing and the matrix share state on purpose)."""
    svc = start_service(tmp_path_factory.mktemp("svc") / "state")
    yield svc
    svc.stop()


@dataclass
class Identities:
    """Tokens of the identities the tests act as, and the group that links two of them.

    ``alice`` is the service's default identity; ``bob`` is in ``group`` with her; ``mallory`` is
    in no group.
    """

    alice: str
    bob: str
    mallory: str
    group: str


@pytest.fixture(scope="module")
def identities(service: Service) -> Iterator[Identities]:
    store = Store(service.state_dir)
    try:
        bob = store.ensure_user("bob")
        mallory = store.ensure_user("mallory")
        group = store.create_group("alice-and-bob", [state_dir_mod.DEFAULT_USER, "bob"])
    finally:
        store.close()
    yield Identities(service.token, bob, mallory, group)
