"""Security fixtures: one service per test module (fuzzing and the matrix share state on purpose).

The service is started with its own default host, so these tests also pin that the default is
loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import Identities, RunningService, create_identities, start_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    svc = start_service(tmp_path_factory.mktemp("svc") / "state", host=None)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def identities(service: RunningService) -> Identities:
    return create_identities(service)
