"""What the service's background sweep does: release expired leases and purge old tasks.

The app runs these every ``sweep_interval_s`` (leases) and ``purge_interval_s`` (purge); see
``app.py``. Before its first sweep, a starting service gives every lease a fresh term
(:func:`restart_lease_clocks`): heartbeats could not arrive while it was down, so an endpoint is
not blamed for the service's own outage.
"""

from __future__ import annotations

import logging

from globus_compute.service.context import ServiceContext
from globus_compute.service.records import LeaseRelease

log = logging.getLogger(__name__)


def restart_lease_clocks(ctx: ServiceContext) -> int:
    """Give every running task ``lease_s`` from now; returns how many (the service started)."""
    extended = ctx.store.leases.restart_clocks(ctx.config.lease_s)
    if extended:
        log.info("service started: %d lease(s) renewed for %.1f s", extended, ctx.config.lease_s)
    return extended


def release_expired_leases(ctx: ServiceContext) -> LeaseRelease:
    """Re-queue or fail the tasks whose leases expired; wake whoever waits on them."""
    release = ctx.store.leases.expire_leases(ctx.config.lease_s)
    ctx.notifier.notify_release(release)
    return release


def purge_expired_tasks(ctx: ServiceContext) -> int:
    """Delete results past their retention and tasks nobody fetched in time; return how many."""
    return ctx.store.tasks.purge_tasks(ctx.config.result_retention_s, ctx.config.unretrieved_ttl_s)
