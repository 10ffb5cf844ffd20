"""Client User Guide, "Registering Functions" and "Running Functions": where does my code run?

    python examples/platform_func.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to run on a
real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def platform_func() -> str:
    """Get platform information about this system."""
    import platform

    return platform.platform()


def main() -> None:
    with local_or_hosted() as (gcc, endpoint_id):
        func_uuid = gcc.register_function(platform_func)
        task_id = gcc.run(endpoint_id=endpoint_id, function_id=func_uuid)
        try:
            print(f"platform: {gcc.get_result(task_id, timeout=120)}")
        except Exception as e:
            print(f"Exception: {e}")


if __name__ == "__main__":
    main()
