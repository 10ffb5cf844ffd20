"""A task's ``user_endpoint_config`` is refused with a clear error by every engine.

docs/guides/migrating.md: "multi-user endpoints and their templates are not implemented, and
tasks with a ``user_endpoint_config`` fail with a clear error there". An adversarial review
found the process engine (the default) and the thread engine running such tasks and ignoring
the template values, so a user relying on them (e.g. a Parsl ``GlobusComputeExecutor`` passing
``user_endpoint_config`` in a resource specification) got results computed under another
configuration than the one asked for, and no word of it. The Parsl engine already refused them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def add(x, y):
    return x + y


@pytest.mark.parametrize("engine", ["process", "thread"])
def test_a_task_with_a_user_endpoint_config_fails_with_a_clear_error(
    local_stack: Callable[..., LocalCompute], engine: str
) -> None:
    local = local_stack(workers=1, engine=engine)
    with local.executor(user_endpoint_config={"account": "abc123", "walltime": "00:10:00"}) as ex:
        future = ex.submit(add, 1, 2)
        with pytest.raises(TaskExecutionFailed, match="user_endpoint_config"):
            future.result(timeout=60)
