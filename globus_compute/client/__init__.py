"""The Client room: the documented Globus Compute REST client and what it stands on.

``Client`` decides what to send and what the answers mean; globus-sdk's Compute clients put it
on the wire. Nothing here starts a thread; the Executor (``globus_compute.executor``) is the
only caller that uses a Client from several threads at once.

::

    client           Client: one method per documented call (register, run, results, ...)
    rest             globus-sdk's v2/v3 Compute clients, per-request retries, request bodies
    auth             which credentials: authorizer, GlobusApp, local token, client identity
    environments     which service URL (environment names, overrides, loopback test,
                     whether polls are held)
    stoppable_retry  globus-sdk retry configs whose waits end at interpreter exit
    request_budget   the per-identity request budget: turns, 429 drains, the poll share
    task_table       task documents -> TaskOutcome; the bounded cache of finished tasks
    result_trust     which results may be deserialized: JSON from anyone, dill from own endpoints
    batch            Batch: the body of one submit request; one call's packed payload
    hardware_report  the self-contained function get_worker_hardware_details runs remotely
"""

from __future__ import annotations

from globus_compute.client.client import Client

__all__ = ["Client"]
