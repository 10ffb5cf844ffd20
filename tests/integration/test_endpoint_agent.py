"""The real endpoint agent (a subprocess with worker processes) against the real service."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from globus_compute.serialize import ComputeSerializer, PureSourceTextInspect
from globus_compute.state_dir import token_path

pytestmark = pytest.mark.integration

SER = ComputeSerializer()
SOURCE = ComputeSerializer(strategy_code=PureSourceTextInspect())
DEADLINE_S = 60.0


# Task functions travel as source text (the "st" strategy) so the agent's workers need not import
# this test module.


def double(x):
    return x * 2


def explode():
    raise ValueError("boom")


def first_run_hangs(marker):
    import os
    import time

    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(120)
    return "rerun finished"


def slow_double(x):
    import time

    time.sleep(1.0)
    return x * 2


def start_agent(svc: Any, name: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start ``python -m globus_compute.endpoint`` in its own session; returns it and its id."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "globus_compute.endpoint", "--service-url", svc.url,
         "--token-file", str(token_path(svc.state_dir)), "--name", name, "--workers", "2",
         "--heartbeat-s", "0.5", *extra],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line:
        kill_agent(proc)
        raise AssertionError("the agent printed no endpoint id")
    return proc, line


def kill_agent(proc: subprocess.Popen) -> None:
    """SIGKILL the agent and its workers, as if the machine had died."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def stop_agent(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        kill_agent(proc)


def register(svc: Any, fn) -> str:
    body = {
        "function_name": fn.__name__,
        "function_code": SER.pack_buffers([SOURCE.serialize(fn)]),
        "serialized": True,
        "meta": {},
    }
    reply = requests.post(f"{svc.url}/v3/functions", json=body, headers=svc.headers, timeout=30)
    reply.raise_for_status()
    return reply.json()["function_uuid"]


def submit(svc: Any, endpoint_id: str, function_id: str, arg_lists) -> list[str]:
    payloads = [SER.pack_buffers([SER.serialize(tuple(a)), SER.serialize({})]) for a in arg_lists]
    body = {"create_queue": False, "tasks": {function_id: payloads}}
    url = f"{svc.url}/v3/endpoints/{endpoint_id}/submit"
    reply = requests.post(url, json=body, headers=svc.headers, timeout=30)
    reply.raise_for_status()
    return reply.json()["tasks"][function_id]


def wait_terminal(svc: Any, task_ids: list[str], timeout=DEADLINE_S) -> dict:
    """Poll batch_status until every task is terminal, or fail at the deadline."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while len(done) < len(task_ids):
        assert time.monotonic() < deadline, f"{len(done)} of {len(task_ids)} tasks finished"
        pending = [t for t in task_ids if t not in done][:1000]
        reply = requests.post(
            f"{svc.url}/v2/batch_status",
            json={"task_ids": pending},
            headers=svc.headers,
            timeout=30,
        )
        if reply.status_code >= 500:
            pause.wait(0.2)
            continue
        for task_id, doc in reply.json()["results"].items():
            if doc.get("status") in ("success", "failed"):
                done[task_id] = doc
        pause.wait(0.05)
    return done


def wait_for_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        pause.wait(0.05)


def test_agent_runs_tasks_and_reports_failures(service: Any):
    proc, endpoint_id = start_agent(service, "it-basic")
    try:
        ok_ids = submit(service, endpoint_id, register(service, double), [(i,) for i in range(300)])
        bad_ids = submit(service, endpoint_id, register(service, explode), [()])
        results = wait_terminal(service, ok_ids + bad_ids)
        assert [SER.deserialize(results[t]["result"]) for t in ok_ids] == [
            2 * i for i in range(300)
        ]
        failed = results[bad_ids[0]]
        assert failed["status"] == "failed"
        assert "ValueError: boom" in failed["exception"]
        details = results[ok_ids[0]]["details"]
        assert details["endpoint_id"] == endpoint_id
        assert set(details["task_transitions"]) == {"execution-start", "execution-end"}
        assert isinstance(results[ok_ids[0]]["completion_t"], str)
    finally:
        assert stop_agent(proc) == 0


def test_same_name_keeps_endpoint_id(service: Any):
    first, endpoint_id = start_agent(service, "it-same-name", "--engine", "thread")
    stop_agent(first)
    second, again = start_agent(service, "it-same-name", "--engine", "thread")
    try:
        assert again == endpoint_id
        ids = submit(service, endpoint_id, register(service, double), [(21,)])
        assert SER.deserialize(wait_terminal(service, ids)[ids[0]]["result"]) == 42
    finally:
        stop_agent(second)


@pytest.mark.parametrize("retries", [0, 1])
def test_killed_agent_tasks_end_per_retry_setting(service: Any, tmp_path, retries):
    flags = ("--max-retries-on-system-failure", str(retries))
    proc, endpoint_id = start_agent(service, "it-kill", *flags)
    marker = tmp_path / "started"
    ids = submit(service, endpoint_id, register(service, first_run_hangs), [(str(marker),)])
    wait_for_file(marker)
    kill_agent(proc)
    # Re-registering under the same name releases what the dead agent held.
    proc, again = start_agent(service, "it-kill", *flags)
    try:
        assert again == endpoint_id
        result = wait_terminal(service, ids)[ids[0]]
        if retries:
            assert result["status"] == "success"
            assert SER.deserialize(result["result"]) == "rerun finished"
        else:
            assert result["status"] == "failed"
            assert "EndpointLost" in result["exception"]
    finally:
        stop_agent(proc)


def test_agent_survives_a_service_restart(service_factory, tmp_path):
    state = tmp_path / "state"
    svc = service_factory(state_dir=state)
    port = svc.url.rsplit(":", 1)[1]
    proc, endpoint_id = start_agent(svc, "it-restart")
    try:
        ids = submit(svc, endpoint_id, register(svc, slow_double), [(i,) for i in range(4)])
        wait_for_running(svc, ids)
        svc.kill9()
        svc = service_factory("--port", port, state_dir=state)
        results = wait_terminal(svc, ids)
        assert sorted(SER.deserialize(r["result"]) for r in results.values()) == [0, 2, 4, 6]
    finally:
        assert stop_agent(proc) == 0


def wait_for_running(svc: Any, task_ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    pause = threading.Event()
    while True:
        reply = requests.post(
            f"{svc.url}/v2/batch_status", json={"task_ids": task_ids}, headers=svc.headers
        ).json()
        if any(doc.get("status") == "running" for doc in reply["results"].values()):
            return
        assert time.monotonic() < deadline, "no task started running"
        pause.wait(0.05)
