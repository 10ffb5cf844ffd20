"""Parsl's ``GlobusComputeExecutor`` over our Executor, through the ``globus_compute_sdk`` alias.

Parsl imports ``globus_compute_sdk`` and type-checks the executor it is given against
``globus_compute_sdk.Executor``. Here the workflow runs in a fresh interpreter with
``GLOBUS_COMPUTE_SDK_ALIAS=1``, on an embedded service and endpoint, and its configuration is
Parsl's *own* test configuration for that executor (``parsl.tests.configs.globus_compute``),
unchanged: ``Executor(endpoint_id=$GLOBUS_COMPUTE_ENDPOINT)`` with the default ``Client()``,
which the usual environment variables point at the embedded service. Python apps, a dependency
chain, a failing app and a bash app run; ``dfk.cleanup()`` (which calls
``executor._get_result_watcher().shutdown(wait=False, cancel_futures=True)``) returns and
unregisters the workflow engine, so a second ``parsl.load()`` works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("parsl")
pytest.importorskip("globus_compute_sdk")  # the reference SDK Parsl's module needs installed

from globus_compute.local import LocalCompute  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]

WORKFLOW = """
import json, os, parsl
from parsl import bash_app, python_app
from parsl.executors import GlobusComputeExecutor
from parsl.tests.configs.globus_compute import fresh_config

import globus_compute, globus_compute_sdk

@python_app
def add(a, b):
    return a + b

@python_app
def fail(x):
    raise ValueError(f"bad {x}")

@bash_app
def echo(word, stdout=None):
    return f"echo {word}"

report = {}
config = fresh_config()
gce = config.executors[0]
report["executor_is_ours"] = type(gce.executor) is globus_compute.Executor
report["sdk_is_ours"] = globus_compute_sdk.Executor is globus_compute.Executor

dfk = parsl.load(config)
report["sums"] = [f.result(timeout=60) for f in [add(i, i) for i in range(5)]]
report["chain"] = add(add(1, 2), add(3, 4)).result(timeout=60)
try:
    fail(7).result(timeout=60)
except Exception as exc:
    report["failure"] = f"{type(exc).__name__}: {exc}"
out = os.path.abspath("echo.out")  # the endpoint's workers run elsewhere on this machine
report["bash"] = echo("hi", stdout=out).result(timeout=60)
report["bash_out"] = open(out).read().strip()
dfk.cleanup()
report["first_executor_shut_down"] = gce.executor._shutdown

dfk = parsl.load(fresh_config())  # "Config has already been loaded" if cleanup had failed
report["second_load"] = add(20, 22).result(timeout=60)
dfk.cleanup()
print("REPORT " + json.dumps(report), flush=True)
"""


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A Globus Compute user dir whose ``local`` state dir the embedded stack uses."""
    return tmp_path_factory.mktemp("gc-user")


@pytest.fixture(scope="module")
def local(user_dir):
    # The endpoint's workers unpickle Parsl's app wrappers: this interpreter's Parsl.
    with LocalCompute(workers=2, state_dir=user_dir / "local") as stack:
        yield stack


def test_parsl_globus_compute_executor_runs_over_ours_under_the_alias(local, user_dir, tmp_path):
    env = {
        **os.environ,
        "GLOBUS_COMPUTE_SDK_ALIAS": "1",
        "GLOBUS_SDK_ENVIRONMENT": "local",
        "GLOBUS_COMPUTE_USER_DIR": str(user_dir),
        "GLOBUS_SDK_SERVICE_URL_COMPUTE": local.base_url,
        "GLOBUS_COMPUTE_ENDPOINT": local.endpoint_id,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=tmp_path,  # Parsl's runinfo/ and the bash app's output land here
        env=env,
    )
    reports = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and reports, proc.stderr[-4000:]
    report = json.loads(reports[0].removeprefix("REPORT "))
    assert report["executor_is_ours"] and report["sdk_is_ours"]
    assert report["sums"] == [0, 2, 4, 6, 8]
    assert report["chain"] == 10
    assert "ValueError" in report["failure"] and "bad 7" in report["failure"]
    assert report["bash"] == 0 and report["bash_out"] == "hi"
    assert report["first_executor_shut_down"] is True
    assert report["second_load"] == 42


def test_without_the_alias_parsl_refuses_our_executor(local):
    from parsl.executors import GlobusComputeExecutor

    with local.executor() as ours:
        with pytest.raises(Exception, match="globus_compute_sdk"):
            GlobusComputeExecutor(executor=ours)
