"""The package's public face: ``__all__`` is exact, and importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
    assert EXPECTED_PUBLIC <= set(dir(globus_compute))


def test_lazy_names_are_the_real_objects() -> None:
    from globus_compute import errors
    from globus_compute.client import Client
    from globus_compute.client.batch import Batch
    from globus_compute.executor import ComputeFuture, Executor
    from globus_compute.serialize import ComputeSerializer

    assert globus_compute.Executor is Executor and globus_compute.Client is Client
    assert globus_compute.Batch is Batch and globus_compute.ComputeFuture is ComputeFuture
    assert globus_compute.ComputeSerializer is ComputeSerializer
    assert globus_compute.errors is errors
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        globus_compute.Nope  # noqa: B018


#: Modules that run in the service, the endpoint agent and its worker processes.
SERVER_SIDE = [
    "globus_compute",
    "globus_compute.service",
    "globus_compute.endpoint",
    "globus_compute.endpoint.engines.worker",
    "globus_compute.endpoint.execution",
]


@pytest.mark.parametrize("module", SERVER_SIDE)
def test_server_side_imports_leave_the_sdk_unloaded(module: str) -> None:
    """The package root is lazy: the service, the agent and every worker process never load
    the Executor, the Client or globus-sdk (0.2-0.3 s and their memory, per process)."""
    probe = (
        f"import sys, {module}\n"
        "print(sorted(m for m in ('globus_sdk', 'globus_compute.executor', "
        "'globus_compute.client') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


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
