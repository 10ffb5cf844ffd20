"""The Executor room: a ``concurrent.futures.Executor`` over a Globus Compute client.

``executor.py`` holds the contract and composes the rest; every other module owns one concept
and imports only modules listed above it (no cycles)::

    future           ComputeFuture (a lean Future with a task id); resolving it from an outcome
    progress         Progress and the thread-safe TaskCounts behind it
    burst_limiter    BurstLimiter: the reference's cap on partial submit batches (opt-in)
    process_hooks    Executors' background work at interpreter exit and after fork
    registry         FunctionRegistry: function -> function id, so each is registered once
    client_protocol  ExecutorClient: exactly what the Executor needs of a client
    settings         TaskSettings: the per-task settings value; the submit group key
    poll_chunks      ChunkSizer: how many ids the next poll asks about
    endpoint_watch   EndpointWatch: which endpoints pending work waits on are offline
    poller           ResultPoller and its frozen PollSettings: one thread polling results
    watcher          ResultWatcher: the current poller, replaced when it gives up
    submitter        TaskSubmitter: the submit queue and the thread sending it in batches
    reload           a task group's ids and finished outcomes, for ``reload_tasks``
    map              ``Executor.map``: ordered results, deadline, chunks, progress bar
    executor         Executor: the public contract

The service and the endpoint never import this package.
"""

from __future__ import annotations

from globus_compute.executor.executor import Executor
from globus_compute.executor.future import ComputeFuture
from globus_compute.executor.progress import Progress

__all__ = ["ComputeFuture", "Executor", "Progress"]
