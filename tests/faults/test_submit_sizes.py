"""Submit batches sized by the bytes actually sent, after JSON escaping (issue 14, item 7).

Why: the service refuses a request body over its limit (413 TASK_PAYLOAD_TOO_LARGE) and every
task in that request fails. The submitter used to size batches by payload *characters*, but a
payload travels inside a JSON string, where each ``"`` and ``\\`` doubles: 40 tasks whose
argument is 180,000 ``"`` characters, serialized with the JSON data strategy (which escapes
them once), take about 720 KB each on the wire, twice what was counted, and 26 of 40 futures
failed with 413. Every one must succeed, in as few requests as fit.
"""

from __future__ import annotations

from collections.abc import Callable

import globus_sdk
import pytest

from globus_compute import Client
from globus_compute.local import LocalCompute
from globus_compute.serialize import JSONData, PureSourceTextInspect
from tests.support.faults import outcomes, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TASKS = 40
QUOTES = 180_000


def length(text: str) -> int:
    return len(text)


def test_tasks_whose_payloads_double_when_escaped_are_not_refused(
    local_stack: Callable[..., LocalCompute],
) -> None:
    local = local_stack(workers=2, engine="thread")
    assert local.base_url is not None and local.token is not None
    client = Client(
        base_url=local.base_url,
        authorizer=globus_sdk.AccessTokenAuthorizer(local.token),
        code_serialization_strategy=PureSourceTextInspect(),
        data_serialization_strategy=JSONData(),
        do_version_check=False,
    )
    argument = '"' * QUOTES
    with local.executor(client=client) as ex:
        futures = [ex.submit(length, argument) for _ in range(TASKS)]
        wait_all(futures)
    results, errors = outcomes(futures)
    assert errors == [], f"{len(errors)} of {TASKS} failed, first: {errors[0]!r}"
    assert results == [QUOTES] * TASKS
