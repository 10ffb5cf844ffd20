"""Each peer of the peer benchmark, opened as a ``concurrent.futures``-style executor.

Every adapter starts its system with two workers, bound to 127.0.0.1 with every dashboard off,
yields an object whose ``submit(fn, *args)`` returns a ``concurrent.futures.Future``, and tears
the whole system down when the block ends, daemons included. Nothing is imported until a peer
is opened, so a missing peer costs nothing but its row.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from typing import Any

WORKERS = 2


@dataclass(frozen=True)
class Peer:
    """One row of the peer table.

    Attributes:
        key: Its name on the command line.
        name: Its name in the table.
        short: Its name in the targets' rows.
        modules: What must be importable to run it.
        open: A context manager yielding its executor, torn down on exit.
        distribution: The package whose version the table shows.
        scheduler: Whether it counts among the scheduler-based peers (Ray, Parsl, Dask) of the
            latency targets.
        note: How it is driven, for the table.
    """

    key: str
    name: str
    short: str
    modules: tuple[str, ...]
    open: Callable[[], contextlib.AbstractContextManager[Any]]
    distribution: str = ""
    scheduler: bool = False
    note: str = ""

    def missing(self) -> str:
        """The first module it needs that cannot be imported, or ``""``.

        Every peer needs psutil: the benchmark checks each peer's processes with it.
        """
        for module in ("psutil", *self.modules):
            if importlib.util.find_spec(module) is None:
                return module
        return ""

    def version(self) -> str:
        if not self.distribution:
            return ""
        try:
            return f"{self.distribution} {metadata.version(self.distribution)}"
        except metadata.PackageNotFoundError:
            return ""


@contextlib.contextmanager
def process_pool() -> Iterator[Executor]:
    with ProcessPoolExecutor(WORKERS) as pool:
        yield pool


@contextlib.contextmanager
def loky_pool() -> Iterator[Executor]:
    import loky

    with loky.ProcessPoolExecutor(max_workers=WORKERS) as pool:
        yield pool


@contextlib.contextmanager
def dask_executor() -> Iterator[Executor]:
    from distributed import Client, LocalCluster

    with (
        tempfile.TemporaryDirectory(prefix="peers-dask-") as tmp,
        LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
            local_directory=tmp,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        # pure=False: Dask otherwise names a call by its function and arguments, so 10,000
        # calls of noop() would be one task computed once.
        with client.get_executor(pure=False) as ex:
            yield ex


class RayExecutor:
    """``submit(fn, *args)`` as a Ray task, answered through ``ObjectRef.future()``."""

    def __init__(self) -> None:
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        import ray

        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(fn)
        future: Future[Any] = remote.remote(*args).future()
        return future


@contextlib.contextmanager
def ray_executor() -> Iterator[RayExecutor]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report to Ray's servers
    import ray

    tmp = tempfile.mkdtemp(prefix="peers-ray-")
    try:
        ray.init(
            address="local",  # always a new cluster of our own, never one already running
            num_cpus=WORKERS,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=200 * 1024**2,  # the machine is shared: no 30% of its memory
            _temp_dir=tmp,
            log_to_driver=False,
            configure_logging=False,
        )
        try:
            yield RayExecutor()
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class HtexExecutor:
    """``submit(fn, *args)`` straight to a HighThroughputExecutor (no DataFlowKernel)."""

    def __init__(self, htex: Any) -> None:
        self._htex = htex

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = self._htex.submit(fn, {}, *args)
        return future


@contextlib.contextmanager
def parsl_htex() -> Iterator[HtexExecutor]:
    from parsl.executors import HighThroughputExecutor
    from parsl.jobs.job_status_poller import JobStatusPoller
    from parsl.providers import LocalProvider

    with tempfile.TemporaryDirectory(prefix="peers-parsl-") as tmp:
        provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1)
        provider.script_dir = tmp
        htex = HighThroughputExecutor(
            label="peers-htex",
            address="127.0.0.1",  # the interchange binds here, not on every interface
            loopback_address="127.0.0.1",
            max_workers_per_node=WORKERS,
            provider=provider,
        )
        htex.run_dir = tmp
        htex.run_id = str(uuid.uuid4())
        htex.start()
        # The poller's first round starts init_blocks; without it no block would start.
        poller = JobStatusPoller(strategy=None, max_idletime=60.0, strategy_period=5.0)
        try:
            poller.add_executors([htex])
            yield HtexExecutor(htex)
        finally:
            poller.close(10)  # cancels the block, which stops its workers
            htex.shutdown()


@contextlib.contextmanager
def our_executor() -> Iterator[Executor]:
    from globus_compute.local import LocalCompute

    service_args = ["--retention-s", "0", "--purge-interval-s", "1"]  # as python -m benchmarks
    with LocalCompute(workers=WORKERS, service_args=service_args) as local:
        with local.executor() as ex:
            yield ex


PEERS: dict[str, Peer] = {
    peer.key: peer
    for peer in (
        Peer("process-pool", "ProcessPoolExecutor(2)", "ProcessPoolExecutor(2)", (), process_pool),
        Peer("loky", "loky(2)", "loky", ("loky",), loky_pool, "loky"),
        Peer(
            "dask",
            "Dask distributed `LocalCluster(2)`, `client.get_executor()`",
            "Dask",
            ("distributed",),
            dask_executor,
            "distributed",
            scheduler=True,
            note="threads_per_worker=1, pure=False",
        ),
        Peer(
            "ray",
            "Ray (`num_cpus=2`), `ObjectRef.future()`",
            "Ray",
            ("ray",),
            ray_executor,
            "ray",
            scheduler=True,
        ),
        Peer(
            "parsl",
            "Parsl HTEX (2 workers, `LocalProvider`)",
            "Parsl HTEX",
            ("parsl",),
            parsl_htex,
            "parsl",
            scheduler=True,
            note="HighThroughputExecutor.submit, no DataFlowKernel",
        ),
        Peer(
            "ours",
            "our `Executor` on `LocalCompute(workers=2)`",
            "ours",
            ("globus_compute",),
            our_executor,
            "globus-compute",
        ),
    )  # fmt: skip
}
