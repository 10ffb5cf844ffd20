"""Load: 4 client processes x 10,000 tasks at once against one embedded service and endpoint.

Why: many clients submitting and long-polling together is where a service loses or duplicates
tasks (races between submit, claim, result and poll) and where it stops answering (a hot loop
holding the event loop or the database). Each client checks its own results and reports counts;
a separate thread keeps asking for the endpoint's status the whole time and every answer must
come within a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from globus_compute.local import LocalCompute

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

CLIENTS = 4
TASKS_PER_CLIENT = 10_000
#: Longest acceptable answer to GET /v2/endpoints/{id}/status while the load runs.
MAX_STATUS_S = 1.0
CLIENT_DEADLINE_S = 150.0

CLIENT_SCRIPT = """
import json
import sys
import time

import globus_sdk

from globus_compute import Client, Executor
from globus_compute.serialize import PureSourceTextInspect


def affine(x):
    return 3 * x + 1


base_url, token, endpoint_id, n = sys.argv[1:]
n = int(n)
client = Client(
    base_url=base_url,
    authorizer=globus_sdk.AccessTokenAuthorizer(token),
    code_serialization_strategy=PureSourceTextInspect(),
    do_version_check=False,
)
start = time.monotonic()
with Executor(endpoint_id=endpoint_id, client=client) as ex:
    results = list(ex.map(affine, range(n)))
    task_group_id = str(ex.task_group_id)
    progress = ex.progress()
correct = sum(1 for x, r in zip(range(n), results) if r == 3 * x + 1)
print(json.dumps({
    "submitted": progress.submitted, "done": progress.done, "failed": progress.failed,
    "results": len(results), "correct": correct, "task_group_id": task_group_id,
    "seconds": round(time.monotonic() - start, 1),
}), flush=True)
"""


class StatusProbe:
    """A named thread asking for the endpoint status every 50 ms, recording each latency."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="load-status-probe")

    def __enter__(self) -> StatusProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    reply = session.get(self.url, headers=self.headers, timeout=10)
                    if reply.status_code != 200 or "status" not in reply.json():
                        self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
                except requests.RequestException as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.monotonic() - began)
                self._stop.wait(0.05)


def test_four_clients_ten_thousand_tasks_each(
    local_stack: Callable[..., LocalCompute], tmp_path: Path
) -> None:
    local = local_stack(workers=2)
    script = tmp_path / "load_client.py"
    script.write_text(CLIENT_SCRIPT)
    argv = [sys.executable, str(script), str(local.base_url), str(local.token),
            str(local.endpoint_id), str(TASKS_PER_CLIENT)]  # fmt: skip
    status_url = f"{local.base_url}/v2/endpoints/{local.endpoint_id}/status"
    began = time.monotonic()
    with StatusProbe(status_url, str(local.token)) as probe:
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(CLIENTS)]
        reports = []
        for proc in procs:
            remaining = max(1.0, began + CLIENT_DEADLINE_S - time.monotonic())
            try:
                out, _ = proc.communicate(timeout=remaining)
            except subprocess.TimeoutExpired:
                for other in procs:
                    other.kill()
                    other.communicate()
                raise
            assert proc.returncode == 0, f"client exited {proc.returncode}: {out[-2000:]}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.monotonic() - began

    for report in reports:
        assert report["results"] == report["correct"] == TASKS_PER_CLIENT, report
        assert (report["submitted"], report["done"], report["failed"]) == (
            TASKS_PER_CLIENT,
            TASKS_PER_CLIENT,
            0,
        ), report
    # Each client's group holds exactly its tasks: none lost, none created twice.
    headers = {"Authorization": f"Bearer {local.token}"}
    for report in reports:
        reply = requests.get(
            f"{local.base_url}/v2/taskgroup/{report['task_group_id']}", headers=headers, timeout=30
        )
        assert reply.status_code == 200, reply.text
        tasks = reply.json()["tasks"]
        assert len({t["id"] for t in tasks}) == len(tasks) == TASKS_PER_CLIENT
    assert len({r["task_group_id"] for r in reports}) == CLIENTS
    assert not probe.failures, probe.failures[:3]
    assert probe.latencies, "the status probe never ran"
    worst = max(probe.latencies)
    print(
        f"load: {CLIENTS}x{TASKS_PER_CLIENT} tasks correct in {elapsed:.1f}s "
        f"(clients {[r['seconds'] for r in reports]}); {len(probe.latencies)} status probes, "
        f"max {worst * 1000:.0f} ms"
    )
    assert worst < MAX_STATUS_S, f"status took {worst:.2f}s under load"
