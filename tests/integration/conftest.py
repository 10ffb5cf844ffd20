"""Fixtures that run the real embedded service on a free port."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from globus_compute import state_dir as state_dir_mod

READY_TIMEOUT_S = 30.0


@dataclass
class RunningService:
    """A ``python -m globus_compute.service`` subprocess and how to talk to it."""

    url: str
    token: str
    state_dir: Path
    proc: subprocess.Popen[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_service(state_dir: Path, *extra_args: str) -> RunningService:
    """Start the service on port 0 and wait (with a deadline) for its READY line."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "globus_compute.service",
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline and not line:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"service did not become ready: {line!r}")
    token = state_dir_mod.read_token_file(state_dir_mod.token_path(state_dir))
    assert token
    return RunningService(line.split()[1], token, state_dir, proc)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    svc = start_service(tmp_path / "state")
    yield svc
    svc.stop()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., RunningService]]:
    """Start services with extra command-line flags; all are stopped after the test."""
    started: list[RunningService] = []

    def factory(*extra_args: str, state_dir: Path | None = None) -> RunningService:
        svc = start_service(state_dir or tmp_path / "state", *extra_args)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.stop()
