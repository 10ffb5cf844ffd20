"""Fixtures for the security and bad-input tests: the real service on a real loopback port.

The service runs as ``python -m globus_compute.service`` in its own process, exactly as users run
it, so a crash or a hang caused by a hostile request shows up as a dead process or a failed
health check instead of being hidden inside the test process. Extra identities and groups are
created through :class:`globus_compute.service.store.Store` on the same state dir (SQLite WAL lets
the test process and the service share the database).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from globus_compute import state_dir as state_dir_mod
from globus_compute.local import ChildProcess, launch_service
from globus_compute.service.store import Store

HTTP_TIMEOUT_S = 30.0


@dataclass
class Service:
    """A running service subprocess, its URL and the default identity's token."""

    url: str
    token: str
    state_dir: Path
    child: ChildProcess
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
        assert self.child.is_running(), f"service exited with {self.child.returncode}"
        version = self.call("GET", "/v2/version", params={"service": "all"})
        assert version.status_code == 200, version.text
        assert "min_sdk_version" in version.json()
        listing = self.call("GET", "/v2/endpoints")
        assert listing.status_code == 200, listing.text
        assert isinstance(listing.json(), list)

    def stop(self) -> int | None:
        self.session.close()
        self.child.stop()
        return self.child.returncode


def start_service(state_dir: Path, *extra_args: str, umask: int = -1) -> Service:
    """Start the service on port 0 with its default host, and wait for it to serve."""
    log_path = state_dir.parent / f"{state_dir.name}-service.log"
    child, url = launch_service(state_dir, log_path, host=None, args=extra_args, umask=umask)
    token = state_dir_mod.read_token_file(state_dir_mod.token_path(state_dir))
    assert token
    return Service(url, token, state_dir, child)


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
