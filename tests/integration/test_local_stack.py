"""The embedded stack as a user meets it: LocalCompute, the CLI, large results."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from globus_compute import state_dir as layout
from globus_compute.errors import TaskExecutionFailed, TaskPending
from globus_compute.local import LocalCompute

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def make_bytes(n: int) -> bytes:
    return b"\x07" * n


@pytest.fixture(scope="module")
def local():
    with LocalCompute(workers=2) as stack:
        yield stack


def test_local_compute_runs_tasks_and_leaves_no_process_behind(tmp_path) -> None:
    stack = LocalCompute(workers=1, state_dir=tmp_path)
    with stack:
        pids = [stack.service.pid, stack.endpoint.pid]
        with stack.executor() as ex:
            assert ex.submit(pow, 2, 10).result(timeout=60) == 1024
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # A given state dir is kept, with its database and the 0600 token file.
    assert layout.database_path(tmp_path).exists()
    assert layout.token_path(tmp_path).stat().st_mode & 0o777 == 0o600


def test_result_just_under_the_limit_is_delivered(local) -> None:
    """Regression: the results route once shared the user's 10 MB request limit, so a result
    close to the 10 MiB result limit could never reach the service."""
    with local.executor() as ex:
        # 7 MiB of bytes serializes (base64 of a pickle) to about 9.3 MiB of text.
        value = ex.submit(make_bytes, 7 * MIB).result(timeout=120)
    assert value == make_bytes(7 * MIB)


def test_result_over_the_limit_fails_only_its_task(local) -> None:
    with local.executor() as ex:
        too_big = ex.submit(make_bytes, 9 * MIB)
        fine = ex.submit(make_bytes, 10)
        with pytest.raises(TaskExecutionFailed, match="MaxResultSizeExceeded"):
            too_big.result(timeout=120)
        assert fine.result(timeout=60) == make_bytes(10)


def test_cli_token_prints_the_same_token_each_time(tmp_path) -> None:
    def token(user: str) -> str:
        cmd = [sys.executable, "-m", "globus_compute.cli", "token", "--state-dir", str(tmp_path)]
        out = subprocess.run(cmd + ["--user", user], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    first = token("alice")
    assert len(first) >= 32
    assert token("alice") == first
    assert token("bob") != first
    assert layout.read_token_file(layout.token_path(tmp_path, "alice")) == first


def test_register_source_code_runs_on_the_endpoint(local) -> None:
    """Regression: source registered with ``serialized: false`` reached the endpoint raw and
    failed with "Invalid length delimiter"."""
    client = local.client()
    source = "def shout(word):\n    return word.upper() + '!'\n"
    function_id = client.register_source_code(source, "shout")
    with local.executor() as ex:
        future = ex.submit_to_registered_function(function_id, args=("hey",))
        assert future.result(timeout=60) == "HEY!"
    assert client.get_function(function_id)["function_code"] == source  # stored verbatim


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return f"slept {seconds}"


def test_get_result_with_timeout_waits_for_the_task(local) -> None:
    client = local.client()
    function_id = client.register_function(nap)
    slow = client.run(3.0, endpoint_id=local.endpoint_id, function_id=function_id)
    quick = client.run(0.5, endpoint_id=local.endpoint_id, function_id=function_id)
    with pytest.raises(TaskPending):
        client.get_result(quick)  # no timeout: the reference behaviour, ask once
    assert client.get_result(quick, timeout=60) == "slept 0.5"
    with pytest.raises(TaskPending):
        client.get_result(slow, timeout=0.3)
    assert client.get_result(slow, timeout=60) == "slept 3.0"
