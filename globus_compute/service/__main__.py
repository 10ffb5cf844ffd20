"""``python -m globus_compute.service``: run the embedded service in the foreground.

Prints exactly one line, ``READY http://<host>:<port>``, once it accepts connections, so a parent
process can start it on port 0 and learn where it listens. Started with a
:mod:`~globus_compute.lifeline` (by ``LocalCompute``), it sends that line over it too, and stops
(as on SIGTERM) when its parent is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from globus_compute import state_dir as state_dir_mod
from globus_compute.lifeline import ChildLifeline
from globus_compute.service import logs
from globus_compute.service.config import ServiceConfig
from globus_compute.service.server import serve
from globus_compute.service.store import Store

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m globus_compute.service", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 = any free port")
    p.add_argument("--state-dir", default=None, help="database and token directory")
    p.add_argument("--lease-s", type=float, default=30.0, help="task lease / liveness window")
    p.add_argument(
        "--retention-s", type=float, default=3600.0, help="keep fetched results this long"
    )
    p.add_argument(
        "--purge-interval-s", type=float, default=60.0, help="how often expired tasks are deleted"
    )
    p.add_argument("--rate-limit", type=float, default=None, help="requests/s per identity")
    p.add_argument(
        "--rate-burst", type=float, default=None, help="rate-limit bucket size (default 10 s)"
    )
    defaults = ServiceConfig.__dataclass_fields__
    for flag, kind, text in (
        ("header-timeout-s", float, "time to deliver a request head"),
        ("body-timeout-s", float, "time to deliver a request body"),
        ("max-connections", int, "open connections at once"),
        ("max-client-connections", int, "open connections of one client address"),
        ("max-answer-bytes", int, "bytes of results in one answer"),
    ):
        default = defaults[flag.replace("-", "_")].default
        p.add_argument(f"--{flag}", type=kind, default=default, help=f"{text} ({default})")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument(
        "--log-file", type=Path, default=None, help="log here, rotating at 10 MB (default stderr)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_level, args.log_file)
    config = ServiceConfig(
        state_dir=args.state_dir or state_dir_mod.default_state_dir(),
        lease_s=args.lease_s,
        result_retention_s=args.retention_s,
        purge_interval_s=args.purge_interval_s,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        header_timeout_s=args.header_timeout_s,
        body_timeout_s=args.body_timeout_s,
        max_connections=args.max_connections,
        max_client_connections=args.max_client_connections,
        max_answer_bytes=args.max_answer_bytes,
    )
    store = Store(config.state_dir)
    store.identities.ensure_user(state_dir_mod.DEFAULT_USER)

    lifeline = ChildLifeline.from_environment()

    def ready(url: str) -> None:
        print(f"READY {url}", flush=True)
        if lifeline is not None:
            lifeline.announce(f"READY {url}")
            lifeline.watch(lambda: os.kill(os.getpid(), signal.SIGTERM))

    try:
        serve(config, args.host, args.port, ready_callback=ready, store=store)
    finally:
        if lifeline is not None:
            lifeline.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
