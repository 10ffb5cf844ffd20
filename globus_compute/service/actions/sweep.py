"""What the service's background sweep does: release expired leases and purge old tasks.

The app runs these every ``sweep_interval_s`` (leases) and ``purge_interval_s`` (purge); see
``app.py``. Before its first sweep, a starting service gives every lease a fresh term
(:func:`restart_lease_clocks`): heartbeats could not arrive while it was down, so an endpoint is
not blamed for the service's own outage. A purge of hundreds of thousands of rows would hold the
database for seconds, so it runs in slices of a few hundred rows, each its own transaction, as
bulk work on the database thread: every request that arrives meanwhile is served before the
next slice.
"""

from __future__ import annotations

import logging
import time

from globus_compute.protocol.agent import MAX_RETRY_PAUSE_S
from globus_compute.service.context import ServiceContext
from globus_compute.service.records import LeaseRelease
from globus_compute.service.store.tasks import PURGE_SLICE_ROWS, PurgeCutoffs

log = logging.getLogger(__name__)

#: Upper bound on the slices of one purge (of tasks, groups, or freed pages): with 500 rows a
#: slice, ten million rows; whatever is left waits for the next purge.
MAX_PURGE_SLICES = 20_000


def restart_lease_clocks(ctx: ServiceContext) -> int:
    """Give every running task a fresh lease; returns how many (the service started).

    The term is ``lease_s`` beyond the longest pause a live agent takes between its tries
    (``MAX_RETRY_PAUSE_S``): an agent that kept retrying through the outage may be in such a
    pause when the service comes back, and its heartbeat after it must still find its leases.
    """
    extended = ctx.store.leases.restart_clocks(ctx.config.lease_s + MAX_RETRY_PAUSE_S)
    if extended:
        log.info("service started: %d lease(s) renewed for %.1f s", extended, ctx.config.lease_s)
    return extended


def release_expired_leases(ctx: ServiceContext) -> LeaseRelease:
    """Re-queue or fail the tasks whose leases expired; wake whoever waits on them."""
    release = ctx.store.leases.expire_leases(ctx.config.lease_s)
    ctx.notifier.notify_release(release)
    return release


async def purge_expired_tasks(ctx: ServiceContext) -> int:
    """Delete results past their retention and tasks nobody fetched in time; return how many.

    Slice after slice (tasks, then emptied task groups, then freed pages), each one call to the
    database thread, so every request queued meanwhile runs before the next slice.
    """
    cutoffs = PurgeCutoffs.at(
        time.time(), ctx.config.result_retention_s, ctx.config.unretrieved_ttl_s
    )
    purged = 0
    for _ in range(MAX_PURGE_SLICES):
        n = await ctx.call_bulk(lambda c: c.store.tasks.purge_slice(cutoffs, PURGE_SLICE_ROWS))
        purged += n
        if n < PURGE_SLICE_ROWS:
            break
    for _ in range(MAX_PURGE_SLICES):
        groups = await ctx.call_bulk(
            lambda c: c.store.tasks.purge_empty_groups(cutoffs.created, PURGE_SLICE_ROWS)
        )
        if groups < PURGE_SLICE_ROWS:
            break
    if purged:
        for _ in range(MAX_PURGE_SLICES):
            if not await ctx.call_bulk(lambda c: c.store.database.reclaim_space_step()):
                break
        await ctx.call_bulk(lambda c: c.store.database.checkpoint())
        log.info("Purged %d expired task(s)", purged)
    return purged
