"""``python -m globus_compute.endpoint --engine parsl --config FILE`` as an admin runs it."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("parsl")
pytest.importorskip("yaml")

import globus_sdk  # noqa: E402

from globus_compute import ComputeSerializer, DillCodeSource, Executor  # noqa: E402
from globus_compute.client import Client  # noqa: E402
from globus_compute.state_dir import token_path, write_token_file  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def triple(x):
    return 3 * x


def agent_argv(url: str, token_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "globus_compute.endpoint", "--service-url", url,
            "--token-file", str(token_file), "--name", "parsl-cli", "--engine", "parsl",
            *extra]  # fmt: skip


def test_agent_runs_tasks_with_the_local_example_config(service):
    config = str(EXAMPLES / "endpoint_config_local.yaml")
    proc = subprocess.Popen(
        agent_argv(service.url, token_path(service.state_dir), "--config", config),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        endpoint_id = proc.stdout.readline().strip() if ready else ""
        assert endpoint_id, "the agent printed no endpoint id"
        client = Client(
            base_url=service.url, authorizer=globus_sdk.AccessTokenAuthorizer(service.token)
        )
        serializer = ComputeSerializer(strategy_code=DillCodeSource())
        with Executor(endpoint_id=endpoint_id, client=client, serializer=serializer) as ex:
            assert list(ex.map(triple, range(5), timeout=90)) == [0, 3, 6, 9, 12]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout:
                proc.stdout.close()


def test_bad_config_stops_the_agent_with_a_clear_error(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("engine:\n  provider:\n    type: SlurmProvider\n    partion: debug\n")
    token_file = tmp_path / "token"
    write_token_file(token_file, "token")
    done = subprocess.run(
        agent_argv("http://127.0.0.1:9", token_file, "--config", str(bad)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "['partion'] not recognised" in done.stderr
