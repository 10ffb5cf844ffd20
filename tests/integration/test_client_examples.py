"""Each Client User Guide example runs to completion on the embedded stack, printing its results."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("globus_compute.local") is None,
        reason="globus_compute.local (the embedded stack) is not importable yet",
    ),
]

NOISY_LINE = re.compile(
    r"noisy_multiply\((\d+), (\d+), \*\*\{'noise': (\d+), 'offset': (\d+)\}\) = "
    r"(-?[\d.]+) in \[(-?\d+), (-?\d+)\]: True"
)


def run_example(name: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLOBUS_COMPUTE_ENDPOINT_ID"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_platform_func_prints_the_worker_platform():
    # The embedded endpoint runs on this machine, so its platform is ours.
    assert run_example("platform_func.py").strip() == f"platform: {platform.platform()}"


def test_hello_greets_bob_smith():
    assert run_example("hello.py").strip() == "Hello Bob Smith"


def test_sharing_runs_a_public_function():
    out = run_example("sharing.py").splitlines()
    assert out == ["registered public function double", "double(21) = 42"]


def test_descriptions_argument_docstring_and_priority():
    assert run_example("descriptions.py").splitlines() == [
        "argument: My function",
        "docstring: My function, with a docstring",
        "both: this has priority over docstrings",
    ]


def test_batch_noisy_multiply_returns_every_result_in_bounds():
    lines = run_example("batch_noisy_multiply.py").splitlines()
    assert len(lines) == 7
    for val, line in enumerate(lines):
        match = NOISY_LINE.fullmatch(line)
        assert match, line
        x, y, noise, offset, result, low, high = match.groups()
        assert (int(x), int(y), int(noise), int(offset)) == (val + 3, val, val // 5, val + 1)
        assert int(low) <= float(result) <= int(high)


def test_endpoint_operations_reports_an_online_endpoint():
    lines = run_example("endpoint_operations.py").splitlines()
    assert lines[0] == "status: online"
    assert lines[1] == "workers: 2"
    metadata = re.fullmatch(r"metadata: uuid=([0-9a-f-]{36}) name=local", lines[2])
    assert metadata, lines[2]
    assert f"my endpoint: {metadata.group(1)} local" in lines[3:]


def test_quickstart_prints_squares_from_submit_and_map():
    lines = run_example("quickstart.py").splitlines()
    assert lines == [
        "submit: " + str([(i, i * i) for i in range(10)]),
        "map: " + str([i * i for i in range(10)]),
    ]
