"""The processes a peer starts: which servers they open, and whether any outlives the peer.

Ray and Dask start daemons (a GCS server, raylets, a scheduler, nannies), Parsl an interchange
and a worker pool. The peer benchmark runs each peer in a child process of its own session, so
everything the peer starts descends from that child or at least shares its session. Two checks
use that:

- ``foreign_listeners``: while the peer runs, every socket a process of the tree listens on
  (TCP) or is bound to (UDP) must serve loopback only; the benchmark refuses to measure a peer
  that serves anything on another interface.
- ``reap``: after the child has exited, any process of the tree still alive (a daemon its
  teardown missed) is terminated by its pid, and named in the table.

Uses psutil (a dependency of Parsl, Dask and Ray, listed in the ``peers`` extra).
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


@dataclass(frozen=True)
class Seen:
    """One process of a peer's tree: its pid and start time (a reused pid has another)."""

    pid: int
    started: float
    name: str


def members(root: int) -> list[Seen]:
    """``root`` (a running process), its descendants, and the other members of its session."""
    import psutil

    found: dict[int, psutil.Process] = {}
    try:
        top = psutil.Process(root)
        for proc in [top, *top.children(recursive=True)]:
            found[proc.pid] = proc
        sid = os.getsid(root)
    except (OSError, psutil.Error):
        return []
    return _describe({**found, **_session(sid)})


def session(sid: int) -> list[Seen]:
    """The processes of session ``sid`` (its leader may have exited)."""
    return _describe(_session(sid))


def _session(sid: int) -> dict[int, psutil.Process]:
    import psutil

    found = {}
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                found[proc.pid] = proc
        except OSError:
            continue
    return found


def _describe(processes: dict[int, psutil.Process]) -> list[Seen]:
    import psutil

    seen = []
    for proc in processes.values():
        try:
            seen.append(Seen(proc.pid, proc.create_time(), proc.name()))
        except psutil.Error:
            continue
    return seen


def foreign_listeners(processes: list[Seen], only_loopback_here: bool = False) -> list[str]:
    """Every ``name(pid) ip:port`` served on a non-loopback address by one of ``processes``.

    Args:
        processes: The peer's processes (all in this process's network namespace).
        only_loopback_here: The namespace has no interface but loopback
            (``private_net.only_loopback``), so a socket bound to every interface (``0.0.0.0``,
            ``::``) serves loopback only.
    """
    import psutil

    out = []
    for seen in processes:
        try:
            sockets = psutil.Process(seen.pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for sock in sockets:
            serving = sock.status == psutil.CONN_LISTEN or (
                sock.type == 2 and not sock.raddr  # socket.SOCK_DGRAM, bound, unconnected
            )
            if not serving or not sock.laddr:
                continue
            ip = ipaddress.ip_address(sock.laddr.ip.split("%", 1)[0])
            if not (_is_loopback(ip) or (only_loopback_here and ip.is_unspecified)):
                out.append(f"{seen.name}({seen.pid}) {sock.laddr.ip}:{sock.laddr.port}")
    return out


def _is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1, as dual-stack sockets (ZeroMQ, gRPC) show it
    return ip.is_loopback


def alive(processes: list[Seen]) -> list[Seen]:
    """Those of ``processes`` still running (same pid, same start time)."""
    import psutil

    out = []
    for seen in processes:
        try:
            proc = psutil.Process(seen.pid)
            if proc.create_time() == seen.started and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(seen)
        except psutil.Error:
            continue
    return out


def reap(processes: list[Seen], grace_s: float = 10.0) -> list[Seen]:
    """Wait ``grace_s`` for ``processes`` to exit, then kill the rest; returns those killed."""
    import psutil

    deadline = time.monotonic() + grace_s
    left = alive(processes)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)  # pacing a look at processes that are exiting on their own
        left = alive(processes)
    for seen in left:
        try:
            psutil.Process(seen.pid).kill()
        except psutil.Error:
            continue
    return left
