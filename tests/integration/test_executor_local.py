"""Executor on the real embedded stack: latency, reload from another process, clean exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def local():
    from globus_compute.local import LocalCompute

    with LocalCompute(workers=2) as stack:
        yield stack


def run_script(local, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter with ``ex`` bound to this stack (not shut down)."""
    prelude = f"""
        import globus_sdk
        from globus_compute import Client, Executor
        client = Client(base_url={local.base_url!r},
                        authorizer=globus_sdk.AccessTokenAuthorizer({local.token!r}))
        ex = Executor(endpoint_id={local.endpoint_id!r}, client=client)
    """
    script = textwrap.dedent(prelude) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_single_task_latency_is_small_on_loopback(local):
    with local.executor() as ex:
        ex.submit(pow, 2, 2).result(timeout=60)  # registration and warm-up
        start = time.perf_counter()
        for i in range(5):
            assert ex.submit(pow, 2, i).result(timeout=60) == 2**i
        assert (time.perf_counter() - start) / 5 < 0.5


def test_reload_tasks_from_a_new_process(local):
    with local.executor(task_group_id=None) as ex:
        futures = [ex.submit(pow, 3, i) for i in range(4)]
        assert [f.result(timeout=60) for f in futures] == [1, 3, 9, 27]
        task_group_id = str(ex.task_group_id)
        task_ids = {f.task_id for f in futures}
    done = run_script(
        local,
        f"""
        futures = ex.reload_tasks({task_group_id!r})
        print(sorted(f.task_id for f in futures))
        print(sorted(f.result(timeout=60) for f in futures))
        ex.shutdown()
        """,
    )
    assert done.returncode == 0, done.stderr
    ids_line, results_line = done.stdout.strip().splitlines()[-2:]
    assert task_ids <= set(eval(ids_line))
    assert {1, 3, 9, 27} <= set(eval(results_line))


def test_interpreter_exits_with_an_executor_left_open(local):
    done = run_script(
        local,
        """
        fut = ex.submit(pow, 2, 8)
        print(fut.result(timeout=60))
        ex.submit(pow, 2, 9)  # still in flight when the script ends; no shutdown()
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[0] == "256"
