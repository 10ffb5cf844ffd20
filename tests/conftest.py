"""Fixtures shared by every suite: the real service and the embedded stack, started on demand,
and the functional tests' Client over a fake transport.

Helpers live in ``tests.support``; fixtures here are thin wrappers that stop what they started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from globus_compute.client import Client
from tests.support.clients import make_client
from tests.support.service import RunningService, start_service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., RunningService]]:
    """Start services with extra command-line flags; all are stopped after the test."""
    started: list[RunningService] = []

    def factory(*extra_args: str, state_dir: Path | None = None, **kw: Any) -> RunningService:
        svc = start_service(state_dir or tmp_path / "state", *extra_args, **kw)
        started.append(svc)
        return svc

    yield factory
    for svc in reversed(started):
        svc.stop()


@pytest.fixture
def service(service_factory: Callable[..., RunningService]) -> RunningService:
    """A fresh service on a per-test state dir."""
    return service_factory()


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start ``LocalCompute`` stacks on a per-test state dir; every one is stopped afterwards."""
    from globus_compute.local import LocalCompute

    started: list[LocalCompute] = []

    def start(**kwargs: Any) -> LocalCompute:
        kwargs.setdefault("state_dir", tmp_path / f"state{len(started)}")
        local = LocalCompute(**kwargs)
        started.append(local)
        return local.start()

    yield start
    for local in reversed(started):
        local.stop()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """A fake transport; every request registered on it must be made by the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client(rsps: responses.RequestsMock) -> Client:
    """Our Client of ``tests.support.clients.BASE``, sending through ``rsps``."""
    return make_client()
