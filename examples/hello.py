"""Client User Guide, "Arguments and data": pass arguments to a function and get a string back.

    python examples/hello.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to run on a
real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def hello(firstname: str, lastname: str) -> str:
    """Say hello to someone."""
    return f"Hello {firstname} {lastname}"


def main() -> None:
    with local_or_hosted() as (gcc, endpoint_id):
        func_id = gcc.register_function(hello)
        task_id = gcc.run("Bob", "Smith", endpoint_id=endpoint_id, function_id=func_id)
        try:
            # timeout: wait for the task instead of raising TaskPending while it runs.
            print(gcc.get_result(task_id, timeout=120))
        except Exception as e:
            print(f"Exception: {e}")


if __name__ == "__main__":
    main()
