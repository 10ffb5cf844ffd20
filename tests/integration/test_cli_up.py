"""``globus-compute-local up`` as ``docs/guides/embedded.md`` shows it, and a script that finds it
unconfigured."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import globus_sdk
import pytest

from globus_compute import Client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SCRIPT = textwrap.dedent(
    """
    import sys
    from globus_compute import Client, Executor

    client = Client(environment="local")  # the local service's Unix socket, the local token
    with Executor(endpoint_id=sys.argv[1], client=client) as ex:
        print(ex.submit(sum, [1, 2, 3]).result(timeout=60))
    """
)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert proc.stdout is not None
    while len(lines) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    return lines


def test_up_serves_a_script_that_uses_the_local_environment(tmp_path) -> None:
    if not port_is_free(5000):
        pytest.skip("port 5000 (the 'local' environment's port) is in use on this machine")
    env = dict(os.environ, GLOBUS_COMPUTE_USER_DIR=str(tmp_path))
    env.pop("GLOBUS_SDK_ENVIRONMENT", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "globus_compute.cli", "up", "--workers", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = read_lines(up, 5, timeout=60)
        assert len(lines) == 5, lines
        assert lines[0] == "service:  http://127.0.0.1:5000"
        endpoint_id = lines[1].removeprefix("endpoint: ")
        assert lines[2] == f"token:    {tmp_path / 'local' / 'tokens' / 'local.token'}"
        assert lines[3] == f"socket:   {tmp_path / 'local' / 'service.sock'}"
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, endpoint_id],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "6"
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    assert port_is_free(5000)  # the service is gone with it


def test_serve_and_endpoint_subcommands_work_together(tmp_path) -> None:
    """``serve`` prints the READY line; ``endpoint`` prints its id first, then serves tasks."""
    cli = [sys.executable, "-m", "globus_compute.cli"]
    serve = subprocess.Popen(
        [*cli, "serve", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    endpoint = None
    try:
        (ready,) = read_lines(serve, 1, timeout=60)
        assert ready.startswith("READY http://127.0.0.1:")
        url = ready.split()[1]
        token = (tmp_path / "tokens" / "local.token").read_text().strip()
        endpoint = subprocess.Popen(
            [*cli, "endpoint", "--service-url", url, "--state-dir", str(tmp_path),
             "--name", "cli", "--workers", "1"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        (endpoint_id,) = read_lines(endpoint, 1, timeout=60)
        client = Client(base_url=url, authorizer=globus_sdk.AccessTokenAuthorizer(token))
        assert client.get_endpoint_status(endpoint_id)["status"] == "online"
        function_id = client.register_function(sum)
        task_id = client.run([4, 5], endpoint_id=endpoint_id, function_id=function_id)
        assert client.get_result(task_id, timeout=60) == 9
    finally:
        for proc in (endpoint, serve):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 0
