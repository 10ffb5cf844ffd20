"""A network namespace of a peer's own, with nothing in it but loopback.

Some peers serve on every interface whatever they are told: Ray 2.60's GCS server, raylet and
core workers bind ``::`` even with ``_node_ip_address="127.0.0.1"``, which Ray turns back into
the machine's address. In a fresh network namespace the machine's only interface is ``lo``, so
"every interface" is loopback (Ray then resolves its node address to 127.0.0.1 and binds it)
and no peer can reach, or be reached from, anything off this machine. The parent starts each
peer's child under ``unshare --net`` (Linux, root) when it can; the child brings ``lo`` up.
"""

from __future__ import annotations

import fcntl
import ipaddress
import shutil
import socket
import struct
import subprocess

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
#: ``struct ifreq``: a 16-byte interface name, then a 24-byte union whose first field is flags.
IFREQ = "16sH22x"


def unshare_prefix() -> list[str]:
    """``["unshare", "--net", "--"]`` if this process may create a network namespace, else []."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    try:
        probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [unshare, "--net", "--"] if probe.returncode == 0 else []


def loopback_up() -> None:
    """Bring ``lo`` up: a new network namespace starts with it down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)
        _, flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


def only_loopback() -> bool:
    """Whether every address of every interface of this namespace is a loopback address."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                if not ipaddress.ip_address(address.address.split("%", 1)[0]).is_loopback:
                    return False
    return True
