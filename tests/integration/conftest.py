"""Fixtures that run the real embedded service on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from globus_compute import state_dir as state_dir_mod
from globus_compute.local import ChildProcess, launch_service


@dataclass
class RunningService:
    """A ``python -m globus_compute.service`` subprocess and how to talk to it."""

    url: str
    token: str
    state_dir: Path
    child: ChildProcess

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> int | None:
        self.child.stop()
        return self.child.returncode

    def kill9(self) -> None:
        self.child.kill()


def start_service(state_dir: Path, *extra_args: str) -> RunningService:
    """Start the service on port 0 and wait (with a deadline) for its READY line."""
    log_path = state_dir.parent / f"{state_dir.name}-service.log"
    child, url = launch_service(state_dir, log_path, args=extra_args)
    token = state_dir_mod.read_token_file(state_dir_mod.token_path(state_dir))
    assert token
    return RunningService(url, token, state_dir, child)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    svc = start_service(tmp_path / "state")
    yield svc
    svc.stop()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., RunningService]]:
    """Start services with extra command-line flags; all are stopped after the test."""
    started: list[RunningService] = []

    def factory(*extra_args: str, state_dir: Path | None = None) -> RunningService:
        svc = start_service(state_dir or tmp_path / "state", *extra_args)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.stop()
