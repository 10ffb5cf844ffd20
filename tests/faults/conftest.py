"""Fixtures of the fault tests (helpers live in ``faultkit.py``, importable by test modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from globus_compute.local import LocalCompute


@pytest.fixture
def local_stack(tmp_path: Any) -> Iterator[Callable[..., LocalCompute]]:
    """Start ``LocalCompute`` stacks on a per-test state dir; every one is stopped afterwards."""
    started: list[LocalCompute] = []

    def start(**kwargs: Any) -> LocalCompute:
        kwargs.setdefault("state_dir", tmp_path / f"state{len(started)}")
        local = LocalCompute(**kwargs)
        started.append(local)
        return local.start()

    yield start
    for local in reversed(started):
        local.stop()
