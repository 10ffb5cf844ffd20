"""Client User Guide, "Sharing Functions": register a function anyone may run.

To share with a Globus Group instead, pass ``group=<group id>`` to ``register_function``.

    python examples/sharing.py

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


def double(x: int) -> int:
    """Double a number; shared publicly."""
    return 2 * x


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

        func_id = gcc.register_function(double, public=True)
        print(f"registered public function {gcc.get_function(func_id)['function_name']}")
        task_id = gcc.run(21, endpoint_id=endpoint_id, function_id=func_id)
        print(f"double(21) = {wait_for_result(gcc, task_id)}")


if __name__ == "__main__":
    main()
