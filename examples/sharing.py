"""Client User Guide, "Sharing Functions": register a function anyone may run.

To share with a Globus Group instead, pass ``group=<group id>`` to ``register_function``.

    python examples/sharing.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to run on a
real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def double(x: int) -> int:
    """Double a number; shared publicly."""
    return 2 * x


def main() -> None:
    with local_or_hosted() as (gcc, endpoint_id):
        func_id = gcc.register_function(double, public=True)
        print(f"registered public function {gcc.get_function(func_id)['function_name']}")
        task_id = gcc.run(21, endpoint_id=endpoint_id, function_id=func_id)
        print(f"double(21) = {gcc.get_result(task_id, timeout=120)}")


if __name__ == "__main__":
    main()
