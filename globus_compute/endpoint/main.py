"""Run an endpoint agent: ``python -m globus_compute.endpoint`` and :func:`run_endpoint`.

The first line on stdout is the endpoint id (flushed), so a parent process can read it as a
handshake; logs go to stderr. SIGTERM or SIGINT stops the agent gracefully (claimed tasks
finish and are reported); a second one stops it at once. Started with a
:mod:`~globus_compute.lifeline` (by ``LocalCompute``), it also sends the endpoint id over it,
and stops at once when its parent is gone.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from globus_compute.endpoint.agent import Agent
from globus_compute.endpoint.config import load_endpoint_config
from globus_compute.endpoint.engines import ENGINES, create_engine
from globus_compute.lifeline import ChildLifeline

log = logging.getLogger(__name__)


def run_endpoint(
    service_url: str,
    token: str,
    name: str,
    *,
    workers: int | None = None,
    engine: str = "process",
    config: str | None = None,
    max_retries_on_system_failure: int = 0,
    heartbeat_s: float = 5.0,
    drain_timeout_s: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
    lifeline: ChildLifeline | None = None,
) -> None:
    """Register an endpoint and serve tasks until it is stopped.

    Stops on SIGTERM/SIGINT (when called from the main thread, where handlers can be
    installed), on a heartbeat reply with ``stop: true``, or when the service refuses the agent.

    Args:
        service_url: The Compute service's base URL.
        token: The endpoint owner's bearer token.
        name: Endpoint name; the same name and owner keep the same endpoint id.
        workers: Worker processes or threads; defaults to the CPU count.
        engine: ``"process"`` (default), ``"thread"`` or ``"parsl"``; see ``engines.ENGINES``.
        config: An endpoint config file (YAML) for the ``parsl`` engine.
        max_retries_on_system_failure: Extra runs of a task lost with a worker or the agent.
        heartbeat_s: Seconds between heartbeats.
        drain_timeout_s: How long a graceful stop lets claimed tasks finish.
        on_ready: Called with the endpoint id once registered and running.
        lifeline: The tie to the parent process: its end stops the agent at once (the
            owner is gone; nobody waits for the tasks).

    Raises:
        ServiceRefused: If the service refuses the registration.
        EndpointConfigError: If the config file is malformed.
    """
    display_name = load_endpoint_config(config).display_name if config is not None else None
    agent = Agent(
        service_url,
        token,
        name,
        create_engine(engine, workers, config),
        heartbeat_s=heartbeat_s,
        max_retries_on_system_failure=max_retries_on_system_failure,
        drain_timeout_s=drain_timeout_s,
        display_name=display_name,
    )
    restore = _install_signal_handlers(agent)
    if lifeline is not None:
        lifeline.watch(lambda: agent.stop(force=True))
    try:
        endpoint_id = agent.start()
        if on_ready is not None:
            on_ready(endpoint_id)
        agent.run()
    finally:
        agent.shutdown()
        restore()


def _install_signal_handlers(agent: Agent) -> Callable[[], None]:
    """First SIGTERM/SIGINT: graceful stop; the next one: stop without waiting for tasks."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    signals_seen = 0

    def handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        agent.stop(force=signals_seen > 1)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m globus_compute.endpoint",
        description="Run a Globus Compute endpoint agent against a Compute service.",
    )
    parser.add_argument("--service-url", required=True, help="the service's base URL")
    parser.add_argument("--token", required=True, help="the endpoint owner's bearer token")
    parser.add_argument("--name", required=True, help="endpoint name (stable endpoint id)")
    parser.add_argument("--workers", type=int, default=None, help="default: CPU count")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="process")
    parser.add_argument("--config", default=None, help="endpoint config file (parsl engine)")
    parser.add_argument("--max-retries-on-system-failure", type=int, default=0, metavar="K")
    parser.add_argument("--heartbeat-s", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--drain-timeout-s",
        type=float,
        default=30.0,
        help="how long a graceful stop lets claimed tasks finish (default 30)",
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line entry point; returns the process exit status."""
    args = _parse_args(argv)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where an agent hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )

    lifeline = ChildLifeline.from_environment()

    def announce(endpoint_id: str) -> None:
        print(endpoint_id, flush=True)
        if lifeline is not None:
            lifeline.announce(endpoint_id)

    try:
        run_endpoint(
            args.service_url,
            args.token,
            args.name,
            workers=args.workers,
            engine=args.engine,
            config=args.config,
            max_retries_on_system_failure=args.max_retries_on_system_failure,
            heartbeat_s=args.heartbeat_s,
            drain_timeout_s=args.drain_timeout_s,
            on_ready=announce,
            lifeline=lifeline,
        )
    except Exception as exc:
        log.error("endpoint failed: %s", exc)
        return 1
    finally:
        if lifeline is not None:
            lifeline.close()
    return 0
