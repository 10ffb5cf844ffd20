"""The package's public face: ``__all__`` is exact, and importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys

import globus_compute

EXPECTED_PUBLIC = {
    "__version__",
    "errors",
    "Batch",
    "Client",
    "ComputeFuture",
    "ComputeSerializer",
    "Executor",
    "AllCodeStrategies",
    "AllDataStrategies",
    "CombinedCode",
    "DillCode",
    "DillCodeSource",
    "DillCodeTextInspect",
    "DillDataBase64",
    "JSONData",
    "PureSourceDill",
    "PureSourceTextInspect",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(globus_compute.__all__) == EXPECTED_PUBLIC
    for name in globus_compute.__all__:
        assert getattr(globus_compute, name) is not None


def test_import_starts_no_thread_and_opens_no_socket() -> None:
    probe = (
        "import os, threading, globus_compute, globus_compute.local, globus_compute.cli\n"
        "links = []\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try:\n"
        "        links.append(os.readlink(f'/proc/self/fd/{fd}'))\n"
        "    except FileNotFoundError:  # the listing's own, already closed\n"
        "        pass\n"
        "print(len(threading.enumerate()), sum('socket:' in link for link in links))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["1", "0"]


def test_importing_the_sdk_does_not_import_the_service_or_parsl() -> None:
    probe = (
        "import sys, globus_compute\n"
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'parsl', 'globus_compute.service') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
