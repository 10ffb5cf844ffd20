"""Client User Guide, "Arguments and data": pass arguments to a function and get a string back.

    python examples/hello.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to run on a
real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

import contextlib
import os
import time

from globus_compute import Client
from globus_compute.environments import is_loopback_url
from globus_compute.errors import TaskPending
from globus_compute.local import LocalCompute


def hello(firstname: str, lastname: str) -> str:
    """Say hello to someone."""
    return f"Hello {firstname} {lastname}"


def wait_for_result(gcc: Client, task_id: str, timeout: float = 120.0):
    """Poll until the task finishes; the embedded service holds each poll until it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return gcc.get_result(task_id)
        except TaskPending:
            if time.monotonic() > deadline:
                raise
            gcc.get_batch_result([task_id], wait=5)
            if not is_loopback_url(gcc.service_url):
                time.sleep(2)  # the hosted service ignores `wait`; keep under its rate limit


def main() -> None:
    endpoint_id = os.environ.get("GLOBUS_COMPUTE_ENDPOINT_ID")
    with contextlib.ExitStack() as stack:
        if endpoint_id:
            gcc = Client()
        else:
            local = stack.enter_context(LocalCompute(workers=2))
            gcc, endpoint_id = local.client(), local.endpoint_id

        func_id = gcc.register_function(hello)
        task_id = gcc.run("Bob", "Smith", endpoint_id=endpoint_id, function_id=func_id)
        try:
            print(wait_for_result(gcc, task_id))
        except Exception as e:
            print(f"Exception: {e}")


if __name__ == "__main__":
    main()
