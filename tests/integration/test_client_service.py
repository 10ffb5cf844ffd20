"""The Client against the real embedded service and endpoint (worker processes)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import globus_sdk
import pytest

from globus_compute import Client
from globus_compute.errors import TaskExecutionFailed, TaskPending
from globus_compute.local import LocalCompute

pytestmark = pytest.mark.integration

WAIT_S = 10.0


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gc-user")


@pytest.fixture(scope="module")
def local(user_dir):
    # dill pickles this module's functions by reference, as for any importable module, so the
    # workers must import it too: put its directory on their path, as a user's project would be.
    here = str(Path(__file__).resolve().parent)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, saved) if p)
    try:
        # The state dir is where environment="local" looks for the token (<user_dir>/local).
        with LocalCompute(workers=2, state_dir=user_dir / "local") as running:
            yield running
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def gcc(local) -> Client:
    return local.client()


def greet(first, last="Smith"):
    """Say hello to someone."""
    return f"Hello {first} {last}"


def divide(a, b):
    return a / b


def nothing():
    return None


def slow(seconds):
    import time

    time.sleep(seconds)
    return seconds


def finished(gcc: Client, task_ids: list[str], timeout: float = 60.0) -> dict[str, dict]:
    """Long-poll until every task is finished (the service holds each poll until one is)."""
    deadline = time.monotonic() + timeout
    while True:
        status = gcc.get_batch_result(task_ids, wait=WAIT_S)
        if all(tid in status and not status[tid]["pending"] for tid in task_ids):
            return status
        assert time.monotonic() < deadline, f"still pending: {status}"


def test_version_check_passes_against_the_service(gcc):
    gcc.version_check()


def test_run_and_get_result(local, gcc):
    fid = gcc.register_function(greet)
    tid = gcc.run("Bob", endpoint_id=local.endpoint_id, function_id=fid, last="Jones")
    finished(gcc, [tid])
    assert gcc.get_result(tid) == "Hello Bob Jones"
    assert gcc.get_task(tid)["status"] == "success"


def test_get_result_of_a_fresh_slow_task_is_pending(local, gcc):
    fid = gcc.register_function(slow)
    tid = gcc.run(2, endpoint_id=local.endpoint_id, function_id=fid)
    with pytest.raises(TaskPending):
        gcc.get_result(tid)
    assert finished(gcc, [tid])[tid]["result"] == 2


def test_batch_keeps_order_across_functions(local, gcc):
    greet_id, divide_id = gcc.register_function(greet), gcc.register_function(divide)
    batch = gcc.create_batch()
    for i in range(5):
        batch.add(greet_id, args=(f"n{i}",))
        batch.add(divide_id, args=(i, 1))
    answer = gcc.batch_run(local.endpoint_id, batch)
    assert set(answer["tasks"]) == {greet_id, divide_id}
    status = finished(gcc, [t for ids in answer["tasks"].values() for t in ids])
    greetings = [status[t]["result"] for t in answer["tasks"][greet_id]]
    quotients = [status[t]["result"] for t in answer["tasks"][divide_id]]
    assert greetings == [f"Hello n{i} Smith" for i in range(5)]
    assert quotients == [0.0, 1.0, 2.0, 3.0, 4.0]
    uuid.UUID(answer["task_group_id"])


def test_failure_is_reported_in_batch_and_raised_by_get_result(local, gcc):
    fid = gcc.register_function(divide)
    tid = gcc.run(1, 0, endpoint_id=local.endpoint_id, function_id=fid)
    entry = finished(gcc, [tid])[tid]
    assert entry["status"] == "failed"
    assert "ZeroDivisionError" in str(entry["exception"])
    with pytest.raises(TaskExecutionFailed, match="ZeroDivisionError: division by zero"):
        gcc.get_result(tid)


def test_function_returning_none(local, gcc):
    tid = gcc.run(endpoint_id=local.endpoint_id, function_id=gcc.register_function(nothing))
    assert finished(gcc, [tid])[tid]["result"] is None


def test_function_document_and_delete(gcc):
    fid = gcc.register_function(greet)
    doc = gcc.get_function(fid)
    assert (doc["function_uuid"], doc["function_name"]) == (fid, "greet")
    assert doc["description"] == "Say hello to someone."
    gcc.delete_function(fid)
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        gcc.get_function(fid)
    assert 400 <= info.value.http_status < 500


def test_source_code_registration_runs(local, gcc):
    fid = gcc.register_source_code("def triple(x):\n    return 3 * x\n", "triple")
    tid = gcc.run(5, endpoint_id=local.endpoint_id, function_id=fid)
    assert finished(gcc, [tid])[tid]["result"] == 15


def test_endpoint_operations(local, gcc):
    assert gcc.get_endpoint_status(local.endpoint_id)["status"] == "online"
    assert gcc.get_endpoint_metadata(local.endpoint_id)["uuid"] == local.endpoint_id
    assert local.endpoint_id in {ep["uuid"] for ep in gcc.get_endpoints()}
    assert local.endpoint_id in {ep["uuid"] for ep in gcc.get_endpoints(role="any")}


def test_worker_hardware_details(local, gcc):
    tid = gcc.get_worker_hardware_details(local.endpoint_id)
    report = finished(gcc, [tid])[tid]["result"]
    assert "== python ==" in report and "== platform ==" in report


def test_unknown_function_and_endpoint_are_4xx(local, gcc):
    unknown = str(uuid.uuid4())
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        gcc.run(endpoint_id=local.endpoint_id, function_id=unknown)
    assert 400 <= info.value.http_status < 500
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        gcc.get_endpoint_status(unknown)
    assert 400 <= info.value.http_status < 500


def test_oversized_payload_is_413_task_payload_too_large(local, gcc):
    fid = gcc.register_function(nothing)
    batch = gcc.create_batch()
    batch.add(fid, args=("x" * (11 * 1024 * 1024),))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        gcc.batch_run(local.endpoint_id, batch)
    assert info.value.http_status == 413
    assert info.value.code == "TASK_PAYLOAD_TOO_LARGE"


def test_bogus_token_is_401(local):
    bogus = Client(
        base_url=local.base_url,
        authorizer=globus_sdk.AccessTokenAuthorizer("not-a-token"),
        do_version_check=False,
    )
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        bogus.get_endpoints()
    assert info.value.http_status == 401


def test_environment_local_reads_the_token_file(local, user_dir, monkeypatch):
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(user_dir))
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", local.base_url)
    client = Client(environment="local")
    assert client.service_url == local.base_url
    assert local.endpoint_id in {ep["uuid"] for ep in client.get_endpoints()}


def test_long_poll_does_not_block_submissions_from_another_thread(local, gcc):
    """The Executor polls and submits from two threads through one Client."""
    slow_id, greet_id = gcc.register_function(slow), gcc.register_function(greet)
    slow_task = gcc.run(4, endpoint_id=local.endpoint_id, function_id=slow_id)
    poll_done = threading.Event()

    def long_poll() -> None:
        gcc.get_batch_result([slow_task], wait=WAIT_S)
        poll_done.set()

    poller = threading.Thread(target=long_poll, name="test-long-poll")
    poller.start()
    try:
        quick = gcc.run("Ann", endpoint_id=local.endpoint_id, function_id=greet_id)
        submitted_during_poll = not poll_done.is_set()
        assert gcc.get_task(quick)["status"]  # a plain GET also goes through meanwhile
    finally:
        poller.join(WAIT_S + 30)
    assert submitted_during_poll
    assert finished(gcc, [quick])[quick]["result"] == "Hello Ann Smith"
