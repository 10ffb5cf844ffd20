"""Quickstart: run functions on the embedded Compute service and endpoint, as with a ThreadPool.

    python examples/quickstart.py

Set GLOBUS_COMPUTE_ENDPOINT_ID to run the same code on a real endpoint of the hosted service
(you will be asked to log in with Globus Auth the first time).
"""

from __future__ import annotations

from concurrent.futures import as_completed

from globus_compute import Executor
from globus_compute.local import local_or_hosted


def square(x: int) -> int:
    """Return x squared."""
    return x * x


def main() -> None:
    with local_or_hosted() as (client, endpoint_id):
        with Executor(endpoint_id=endpoint_id, client=client) as ex:
            futures = {ex.submit(square, i): i for i in range(10)}
            done = sorted((futures[f], f.result()) for f in as_completed(futures))
            print("submit:", done)
            print("map:", list(ex.map(square, range(10))))


if __name__ == "__main__":
    main()
