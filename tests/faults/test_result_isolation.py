"""One task's result the service cannot store fails that task alone (issue 14, item 5).

Why: a task's exception text may hold a lone surrogate (``ValueError("bad \\ud800")``), which
is not Unicode and cannot be stored as text, and a result may be too big to carry. Either fails
that task alone, with the reason; the healthy results reported in the same batch are stored as
they are. (A results request the service refuses for its size is split by the agent until only
the culprit's task fails: ``tests/unit/test_endpoint_agent.py``.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.errors import TaskExecutionFailed
from globus_compute.local import LocalCompute
from globus_compute.serialize import JSONData
from tests.support.faults import Ledger, logged_run, outcomes, source_client, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HEALTHY = 100
#: Double quotes in the oversized result: 12 MB once serialized with JSONData (each one escaped),
#: over the 10 MB limit of one result.
QUOTES = 6 * 1024 * 1024


def test_an_unstorable_result_fails_only_its_own_task(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    local = local_stack(workers=2)
    runs = str(tmp_path / "runs.log")
    ledger = Ledger()
    with local.executor(client=source_client(local), result_serializers=[JSONData()]) as ex:
        healthy = [ex.submit(logged_run, runs, x) for x in range(HEALTHY // 2)]
        surrogate = ex.submit(logged_run, runs, -1, 0, "surrogate")
        healthy += [ex.submit(logged_run, runs, x) for x in range(HEALTHY // 2, HEALTHY)]
        oversized = ex.submit(logged_run, runs, QUOTES, 0, "quotes")
        futures = ledger.track([*healthy, surrogate, oversized])
        wait_all(futures)

    ledger.assert_each_once(futures)
    results, errors = outcomes(healthy)
    print(f"{len(results)} of {HEALTHY} healthy tasks ok; {len(errors)} failed")
    assert errors == [], [str(e)[:300] for e in errors[:3]]
    assert results == [[x, x * x] for x in range(HEALTHY)]  # JSONData: tuples come back lists

    bad = surrogate.exception(timeout=0)
    assert isinstance(bad, TaskExecutionFailed), repr(bad)
    assert "ValueError: bad" in str(bad), str(bad)
    assert "\\ud800" in str(bad), "the unencodable character is shown, escaped"
    too_big = oversized.exception(timeout=0)
    assert isinstance(too_big, TaskExecutionFailed), repr(too_big)
    assert "MaxResultSizeExceeded" in str(too_big), str(too_big)[:300]
