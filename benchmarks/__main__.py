"""Run every benchmark and print one table: ``python -m benchmarks [--quick] [--json PATH]``."""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import bench_executor, bench_parsl, bench_scale, bench_serialize, bench_service
from benchmarks.harness import Report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--json", default="benchmarks/results.json", help="where to write JSON")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 100,000-task run")
    parser.add_argument("--skip-parsl", action="store_true", help="skip the parsl engine row")
    parser.add_argument("--engine", default="process", help="endpoint engine for the run")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="only the peer table (bench_peers; writes benchmarks/results-peers.json)",
    )
    ns = parser.parse_args(argv)
    if ns.peers:
        from benchmarks import bench_peers

        return bench_peers.main([])

    from globus_compute.local import LocalCompute

    report = Report()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    print("serialization (ours vs reference)...", flush=True)
    bench_serialize.run(report)
    with LocalCompute(
        workers=2, engine=ns.engine, service_args=["--retention-s", "0", "--purge-interval-s", "1"]
    ) as local:
        print("executor vs ProcessPoolExecutor(2)...", flush=True)
        bench_executor.run(report, local)
        print("service, reference client...", flush=True)
        bench_service.run(report, local)
        if not ns.skip_scale:
            print("scale...", flush=True)
            bench_scale.run(report, local)
    if not ns.skip_parsl:
        try:
            import parsl  # noqa: F401
        except ImportError:
            print("(parsl not installed: parsl engine row skipped)")
        else:
            print("parsl engine vs process engine...", flush=True)
            bench_parsl.run(report)
    print()
    print(report.table())
    report.to_json(ns.json)
    print(f"\nwritten to {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
