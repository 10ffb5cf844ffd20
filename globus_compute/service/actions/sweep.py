"""What the service's background sweep does: release expired leases and purge old tasks.

The app runs these every ``sweep_interval_s`` (leases) and ``purge_interval_s`` (purge); see
``app.py``.
"""

from __future__ import annotations

from globus_compute.service.context import ServiceContext
from globus_compute.service.records import LeaseRelease


def release_expired_leases(ctx: ServiceContext) -> LeaseRelease:
    """Re-queue or fail the tasks whose leases expired; wake whoever waits on them."""
    release = ctx.store.leases.expire_leases(ctx.config.lease_s)
    ctx.notifier.notify_release(release)
    return release


def purge_expired_tasks(ctx: ServiceContext) -> int:
    """Delete results past their retention and tasks nobody fetched in time; return how many."""
    return ctx.store.tasks.purge_tasks(ctx.config.result_retention_s, ctx.config.unretrieved_ttl_s)
