"""Acting as another local user: the first adversary on a shared machine.

Tests run as root in CI and on the development machines; ``setpriv`` drops a child to user
``nobody`` (group ``nogroup``, no supplementary groups), which is then exactly as privileged as
any other user of a login node. Tests that need it skip, with the reason, when they are not
root or ``setpriv`` is missing.

What such a child can reach is decided by the directories on the way, so the victim's files
live under :func:`shared_dir`: a directory anyone may enter, as a home directory usually is.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ATTACKER = "nobody"


def _attacker_group() -> str:
    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    return ATTACKER


def require_other_user() -> None:
    """Skip the calling test unless it can run code as ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("acting as another local user needs root (setpriv --reuid=nobody)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")


def as_other_user(argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that it runs as ``nobody``."""
    group = _attacker_group()
    return ["setpriv", f"--reuid={ATTACKER}", f"--regid={group}", "--clear-groups", *argv]


def attacker_env() -> dict[str, str]:
    """A minimal environment for the attacker: nothing of ours leaks into it."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}


def run_as_other_user(code: str, *args: str, timeout: float = 60) -> Any:
    """Run Python ``code`` as ``nobody``; it prints one JSON document, which is returned."""
    done = subprocess.run(
        as_other_user([sys.executable, "-I", "-c", code, *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=attacker_env(),
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_as_other_user(code: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start Python ``code`` as ``nobody`` (stdout piped, text mode)."""
    return subprocess.Popen(
        as_other_user([sys.executable, "-I", "-c", code, *args]),
        stdout=subprocess.PIPE,
        text=True,
        env=attacker_env(),
        cwd="/",
        **popen,
    )


@contextmanager
def shared_dir() -> Iterator[Path]:
    """A fresh directory (mode 0755, ours) that the other user may enter but not write."""
    path = Path(tempfile.mkdtemp(prefix="gc-shared-"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
