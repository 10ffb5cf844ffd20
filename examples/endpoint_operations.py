"""Client User Guide, "Endpoint Operations": an endpoint's status, its metadata, your endpoints.

    python examples/endpoint_operations.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to ask about
a real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

import contextlib
import os

from globus_compute import Client
from globus_compute.local import LocalCompute


def main() -> None:
    endpoint_id = os.environ.get("GLOBUS_COMPUTE_ENDPOINT_ID")
    with contextlib.ExitStack() as stack:
        if endpoint_id:
            gcc = Client()
        else:
            local = stack.enter_context(LocalCompute(workers=2))
            gcc, endpoint_id = local.client(), local.endpoint_id

        status = gcc.get_endpoint_status(endpoint_id)
        print(f"status: {status['status']}")
        print(f"workers: {status.get('details', {}).get('total_workers')}")

        metadata = gcc.get_endpoint_metadata(endpoint_id)
        print(f"metadata: uuid={metadata['uuid']} name={metadata['name']}")

        for endpoint in gcc.get_endpoints():
            print(f"my endpoint: {endpoint['uuid']} {endpoint['name']}")


if __name__ == "__main__":
    main()
