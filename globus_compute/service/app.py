"""The app factory: routes, error bodies, limits, and the lease sweeper and purger.

``create_app`` takes its storage as an argument, so tests hand it a store on a temp dir and the
command line hands it the store it already used to create the default identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from globus_compute.service.actions import sweep
from globus_compute.service.config import ServiceConfig
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import install_error_handlers
from globus_compute.service.hot_routes import HotRoutes
from globus_compute.service.limits import LimitsMiddleware, TokenBucket
from globus_compute.service.notify import Notifier
from globus_compute.service.routes import ROUTERS
from globus_compute.service.store import StorageError, Store
from globus_compute.version import __version__

log = logging.getLogger(__name__)


async def _release_leases(ctx: ServiceContext) -> None:
    """Release expired leases every ``sweep_interval_s``.

    First, every lease gets a fresh term: the service was down, not the endpoints.
    """
    try:
        await ctx.call(sweep.restart_lease_clocks)
    except Exception:
        log.exception("Renewing the leases at start failed")
    while True:
        try:
            await ctx.call(sweep.release_expired_leases)
        except StorageError as exc:
            log.warning("Lease sweep skipped: %s", exc)
        except Exception:
            log.exception("Lease sweep failed; retrying next interval")
        await asyncio.sleep(ctx.config.sweep_interval_s)


async def _purge(ctx: ServiceContext) -> None:
    """Purge old tasks every ``purge_interval_s``, in slices (``actions/sweep.py``)."""
    while True:
        try:
            await sweep.purge_expired_tasks(ctx)
        except StorageError as exc:
            log.warning("Purge skipped: %s", exc)
        except Exception:
            log.exception("Purge failed; retrying next interval")
        await asyncio.sleep(ctx.config.purge_interval_s)


def create_app(config: ServiceConfig, store: Store | None = None) -> FastAPI:
    """Build the ASGI app of one service instance.

    Args:
        config: Settings; read now, not at import.
        store: Storage to use; by default the database in ``config.state_dir``.
    """
    ctx = ServiceContext(config=config, store=store or Store(config.state_dir), notifier=Notifier())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweepers = [
            asyncio.create_task(_release_leases(ctx), name="lease-sweeper"),
            asyncio.create_task(_purge(ctx), name="purger"),
        ]
        try:
            yield
        finally:
            ctx.notifier.close()
            for sweeper in sweepers:
                sweeper.cancel()
            for sweeper in sweepers:
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    app = FastAPI(
        title="Globus Compute (embedded service)",
        version=__version__,
        description="Wire-compatible with the Globus Compute web service API (v2/v3), plus the "
        "private agent routes of globus_compute.protocol.agent.",
        lifespan=lifespan,
        # Served by routes/schema.py behind the bearer token; no browsable pages.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    bucket = None
    if config.rate_limit is not None:
        burst = (
            config.rate_burst if config.rate_burst is not None else max(1.0, 10 * config.rate_limit)
        )
        bucket = TokenBucket(config.rate_limit, burst)
    app.add_middleware(HotRoutes, ctx=ctx)  # inside the limits: sees only what they let in
    app.add_middleware(LimitsMiddleware, ctx=ctx, bucket=bucket)

    for router in ROUTERS:
        app.include_router(router)
    return app
