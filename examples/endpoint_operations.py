"""Client User Guide, "Endpoint Operations": an endpoint's status, its metadata, your endpoints.

    python examples/endpoint_operations.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to ask about
a real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def main() -> None:
    with local_or_hosted() as (gcc, endpoint_id):
        status = gcc.get_endpoint_status(endpoint_id)
        print(f"status: {status['status']}")
        print(f"workers: {status.get('details', {}).get('total_workers')}")

        metadata = gcc.get_endpoint_metadata(endpoint_id)
        print(f"metadata: uuid={metadata['uuid']} name={metadata['name']}")

        for endpoint in gcc.get_endpoints():
            print(f"my endpoint: {endpoint['uuid']} {endpoint['name']}")


if __name__ == "__main__":
    main()
