"""Client User Guide, "Sharing Functions": describe a function, by argument or by docstring.

    python examples/descriptions.py

Runs on the embedded Compute service; set GLOBUS_COMPUTE_ENDPOINT_ID to use the hosted service
instead (you will be asked to log in the first time). No task runs, so no endpoint work is done.
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def func() -> str:
    return "foo"


def function_with_docstring() -> str:
    """My function, with a docstring"""
    return "foo"


def main() -> None:
    with local_or_hosted(workers=1) as (gcc, _endpoint_id):
        registrations = {
            "argument": gcc.register_function(func, description="My function"),
            "docstring": gcc.register_function(function_with_docstring),
            # If both are given, the argument wins over the docstring.
            "both": gcc.register_function(
                function_with_docstring, description="this has priority over docstrings"
            ),
        }
        for how, func_id in registrations.items():
            print(f"{how}: {gcc.get_function(func_id)['description']}")


if __name__ == "__main__":
    main()
