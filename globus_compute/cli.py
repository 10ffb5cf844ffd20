"""``globus-compute-local``: run the embedded Compute service and endpoint from a shell.

::

    globus-compute-local up        service + one endpoint; prints the URL, endpoint id, token file
    globus-compute-local serve     the service alone
    globus-compute-local endpoint  an endpoint agent for a running service
    globus-compute-local token     print a local identity's bearer token (creating it)

``up`` and ``serve`` listen on ``http://127.0.0.1:5000`` (for reference clients) and on the
Unix socket of the state dir. ``Client(environment="local")`` and ``endpoint`` use that socket
and the default identity's token file from the default state dir, so their token reaches only
their owner's service; no token is ever passed on a command line.

``--rate-limit 2 --rate-burst 20`` (``serve`` and ``up``) enforces the hosted service's
20 requests per 10 s per identity, answering 429 with ``Retry-After`` beyond it: the way to
rehearse a workload against the hosted limits (docs/guides/embedded.md, "Rehearsing the
hosted limits").
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from globus_compute import local_socket
from globus_compute import state_dir as layout

DEFAULT_PORT = 5000
ALLOWED_HELP = (
    "comma-separated deserializers the endpoint accepts, e.g. "
    "'globus_compute_sdk.*Code,globus_compute_sdk.serialize.JSONData' (default: any)"
)


def _exec_module(module: str, args: list[str]) -> int:
    """Replace this process with ``python -m module args`` (signals then reach it directly)."""
    os.execv(sys.executable, [sys.executable, "-m", module, *args])
    return 0  # not reached


def _rate_args(ns: argparse.Namespace) -> list[str]:
    """The service's rate-limit options, as given."""
    args = []
    if ns.rate_limit is not None:
        args += ["--rate-limit", str(ns.rate_limit)]
    if ns.rate_burst is not None:
        args += ["--rate-burst", str(ns.rate_burst)]
    return args


def cmd_serve(ns: argparse.Namespace) -> int:
    args = ["--host", ns.host, "--port", str(ns.port), "--state-dir", str(ns.state_dir)]
    return _exec_module("globus_compute.service", args + _rate_args(ns))


def cmd_token(ns: argparse.Namespace) -> int:
    from globus_compute.service.store import Store

    store = Store(ns.state_dir)
    try:
        print(store.identities.ensure_user(ns.user))
    finally:
        store.close()
    return 0


def cmd_endpoint(ns: argparse.Namespace) -> int:
    token_file = ns.token_file or layout.token_path(ns.state_dir)
    if not ns.token_file and not os.path.exists(token_file):
        print(
            f"No token file at {token_file}; pass --token-file or run "
            "`globus-compute-local token` (or `up`) first.",
            file=sys.stderr,
        )
        return 2
    service_url = ns.service_url or local_socket.socket_url(layout.socket_path(ns.state_dir))
    args = [
        "--service-url", service_url, "--token-file", str(token_file), "--name", ns.name,
        "--workers", str(ns.workers), "--engine", ns.engine,
    ]  # fmt: skip
    if ns.allowed_serializers:
        args += ["--allowed-serializers", ns.allowed_serializers]
    return _exec_module("globus_compute.endpoint", args)


def cmd_up(ns: argparse.Namespace) -> int:
    from globus_compute.local import LocalCompute

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    allowed = [p for p in (ns.allowed_serializers or "").split(",") if p]
    local = LocalCompute(
        workers=ns.workers,
        engine=ns.engine,
        state_dir=ns.state_dir,
        port=ns.port,
        allowed_serializers=allowed,
        service_args=_rate_args(ns),
    )
    with local:
        assert local.state_dir is not None
        print(f"service:  {local.base_url}")
        print(f"endpoint: {local.endpoint_id}")
        print(f"token:    {layout.token_path(local.state_dir)}")
        print(f"socket:   {layout.socket_path(local.state_dir)}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(1.0):
            for child in (local.service, local.endpoint):
                if child is not None and not child.is_running():
                    print(f"the {child.name} exited; see {child.log_path}", file=sys.stderr)
                    return 1
    return 0


def _add_rate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="PER_S",
        help="requests per second allowed per identity (429 beyond); 2 = the hosted limit",
    )
    parser.add_argument(
        "--rate-burst",
        type=float,
        default=None,
        metavar="N",
        help="requests an identity may send at once (default: 10 s worth of --rate-limit)",
    )


def build_parser() -> argparse.ArgumentParser:
    from globus_compute.endpoint.main import RefuseTokenOnArgv

    parser = argparse.ArgumentParser(
        prog="globus-compute-local",
        description="Run the embedded Globus Compute service and endpoint on this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    default_dir = layout.default_state_dir()

    serve = sub.add_parser("serve", help="run the Compute service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--state-dir", default=default_dir)
    _add_rate_options(serve)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="print a bearer token, creating the identity")
    token.add_argument("--state-dir", default=default_dir)
    token.add_argument("--user", default=layout.DEFAULT_USER)
    token.set_defaults(func=cmd_token)

    endpoint = sub.add_parser("endpoint", help="run an endpoint agent (prints its id first)")
    endpoint.add_argument(
        "--service-url",
        default=None,
        help="the service's URL (default: the Unix socket of --state-dir's service)",
    )
    endpoint.add_argument("--state-dir", default=default_dir)
    endpoint.add_argument(
        "--token-file", default=None, help="default: the state dir's tokens/local.token"
    )
    endpoint.add_argument("--token", nargs="?", action=RefuseTokenOnArgv, help=argparse.SUPPRESS)
    endpoint.add_argument("--name", default="default")
    endpoint.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    endpoint.add_argument("--engine", choices=["process", "thread", "parsl"], default="process")
    endpoint.add_argument("--allowed-serializers", default=None, help=ALLOWED_HELP)
    endpoint.set_defaults(func=cmd_endpoint)

    up = sub.add_parser("up", help="run the service and one endpoint")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    up.add_argument("--engine", choices=["process", "thread", "parsl"], default="process")
    up.add_argument("--state-dir", default=default_dir)
    up.add_argument("--allowed-serializers", default=None, help=ALLOWED_HELP)
    _add_rate_options(up)
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
