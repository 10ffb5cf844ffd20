"""The real embedded service in a subprocess, as tests start and talk to it.

The service runs as ``python -m globus_compute.service`` in its own process, exactly as users
run it, so a crash or a hang caused by a test shows up as a dead process or a failed health
check instead of being hidden inside the test process. Extra identities and groups are created
through :class:`globus_compute.service.store.Store` on the same state dir (SQLite WAL lets the
test process and the service share the database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from globus_compute import state_dir as state_dir_mod
from globus_compute.local import ChildProcess, launch_service

HTTP_TIMEOUT_S = 30.0


@dataclass
class RunningService:
    """A running service subprocess, its URL and the default identity's token."""

    url: str
    token: str
    state_dir: Path
    child: ChildProcess
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, token: str | None = "", **kw: Any) -> requests.Response:
        """One request; ``token=""`` means the default identity, ``None`` means no header."""
        tok = self.token if token == "" else token
        headers = dict(kw.pop("headers", {}) or {})
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.request(method, self.url + path, headers=headers, **kw)

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

    def kill9(self) -> None:
        self.child.kill()


def start_service(
    state_dir: Path, *extra_args: str, host: str | None = "127.0.0.1", umask: int = -1
) -> RunningService:
    """Start the service on port 0 and wait (with a deadline) for it to serve.

    Args:
        state_dir: The service's state dir.
        extra_args: Extra command-line options (``--lease-s 2``, ...).
        host: The interface; None leaves the service's own default (loopback).
        umask: The child's umask; -1 keeps ours.
    """
    log_path = state_dir.parent / f"{state_dir.name}-service.log"
    child, url = launch_service(state_dir, log_path, host=host, args=extra_args, umask=umask)
    token = state_dir_mod.read_token_file(state_dir_mod.token_path(state_dir))
    assert token
    return RunningService(url, token, state_dir, child)


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


def create_identities(service: RunningService) -> Identities:
    """Create bob, mallory and alice's group with bob on the service's state dir."""
    from globus_compute.service.store import Store

    store = Store(service.state_dir)
    try:
        bob = store.identities.ensure_user("bob")
        mallory = store.identities.ensure_user("mallory")
        group = store.groups.create_group("alice-and-bob", [state_dir_mod.DEFAULT_USER, "bob"])
    finally:
        store.close()
    return Identities(service.token, bob, mallory, group)
