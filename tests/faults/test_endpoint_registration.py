"""Registration is not a takeover, and an agent's registration keeps the owner's settings
(issue 14, items 3 and 4).

Why: the owner updates an endpoint (``PUT /v3/endpoints/{id}``, ``Client.register_endpoint``)
while its agent runs; nothing restarted, so nothing the agent holds may be taken from it. And
what the owner set (``public``, the ``allowed_functions`` restriction, ``display_name``) must
survive the agent's own registration at every (re)start, which sends none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from globus_compute.local import LocalCompute
from tests.support.faults import (
    Ledger,
    logged_run,
    outcomes,
    run_starts,
    source_client,
    wait_all,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TASKS = 6
TASK_S = 1.0


def not_allowed() -> int:
    """A function outside the endpoint's allow-list."""
    return 1


def test_updating_an_endpoint_takes_no_task_from_its_running_agent(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    local = local_stack(workers=2)
    client = source_client(local)
    runs = str(tmp_path / "runs.log")
    ledger = Ledger()
    with local.executor(client=client) as ex:
        futures = ledger.track(ex.submit(logged_run, runs, x, TASK_S) for x in range(TASKS))
        wait_until(lambda: len(run_starts(runs)) >= 2, "two tasks to start")
        client.register_endpoint(local.endpoint_name, local.endpoint_id, display_name="renamed")
        wait_all(futures)

    ledger.assert_each_once(futures)
    results, errors = outcomes(futures)
    print(f"update while running: {len(results)} ok, {len(errors)} failed of {TASKS}")
    assert errors == [], [str(e)[:200] for e in errors]
    assert results == [(x, x * x) for x in range(TASKS)]
    assert {x: len(s) for x, s in run_starts(runs).items()} == {x: 1 for x in range(TASKS)}
    assert client.get_endpoint_metadata(local.endpoint_id)["display_name"] == "renamed"


def test_the_owners_settings_survive_an_agent_restart(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    local = local_stack(workers=1)
    client = source_client(local)
    function_id = client.register_function(logged_run)
    client.register_endpoint(
        local.endpoint_name,
        local.endpoint_id,
        display_name="Owner's name",
        public=True,
        allowed_functions=[function_id],
    )
    assert local.endpoint is not None
    local.endpoint.stop()
    local.start_endpoint()

    metadata = client.get_endpoint_metadata(local.endpoint_id)
    allowed = client.get_allowed_functions(local.endpoint_id)
    print(f"after restart: public={metadata['public']}, display_name={metadata['display_name']!r}")
    assert metadata["public"] is True
    assert metadata["display_name"] == "Owner's name"
    assert allowed["restricted"] is True
    assert allowed["functions"] == [function_id]
    # The restriction still works both ways after the restart.
    runs = str(tmp_path / "runs.log")
    with local.executor(client=client) as ex:
        ex.register_function(logged_run, function_id=function_id)
        future = ex.submit(logged_run, runs, 5)
        assert future.result(timeout=60) == (5, 25)
        refused = ex.submit(not_allowed)
        wait_all([refused])
        assert refused.exception(timeout=0) is not None
