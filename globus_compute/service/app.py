"""The app factory: routes, error bodies, limits, and the lease/purge sweeper.

``create_app`` takes its storage as an argument, so tests hand it a store on a temp dir and the
command line hands it the store it already used to create the default identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Query
from starlette.responses import Response

from globus_compute.service import (
    routes_agent,
    routes_endpoints,
    routes_functions,
    routes_tasks,
)
from globus_compute.service.config import ServiceConfig
from globus_compute.service.deps import ServiceContext, json_response
from globus_compute.service.errors import install_error_handlers
from globus_compute.service.limits import LimitsMiddleware, TokenBucket
from globus_compute.service.notify import Notifier
from globus_compute.service.store import Store
from globus_compute.version import __version__

log = logging.getLogger(__name__)

#: Oldest reference SDK / endpoint this service talks to (the reference client compares these
#: with its own version, 4.19.0, and refuses to run when it is older).
MIN_SDK_VERSION = "2.0.0"
MIN_ENDPOINT_VERSION = "2.0.0"
API_VERSION = "1.0.0"


async def _sweep(ctx: ServiceContext) -> None:
    """Release expired leases every ``sweep_interval_s``; purge old tasks every purge interval."""
    loop = asyncio.get_running_loop()
    next_purge = loop.time()
    while True:
        try:
            failed, requeued = ctx.store.expire_leases(ctx.config.lease_s)
            ctx.notifier.notify_tasks(failed)
            ctx.notifier.notify_endpoints(requeued)
            if loop.time() >= next_purge:
                ctx.store.purge_tasks(ctx.config.result_retention_s, ctx.config.unretrieved_ttl_s)
                next_purge = loop.time() + ctx.config.purge_interval_s
        except Exception:
            log.exception("Lease/purge sweep failed; retrying next interval")
        await asyncio.sleep(ctx.config.sweep_interval_s)


def create_app(config: ServiceConfig, store: Store | None = None) -> FastAPI:
    """Build the ASGI app of one service instance.

    Args:
        config: Settings; read now, not at import.
        store: Storage to use; by default the database in ``config.state_dir``.
    """
    ctx = ServiceContext(config=config, store=store or Store(config.state_dir), notifier=Notifier())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep(ctx), name="lease-sweeper")
        try:
            yield
        finally:
            ctx.notifier.close()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    app = FastAPI(
        title="Globus Compute (embedded service)",
        version=__version__,
        description="Wire-compatible with the Globus Compute web service API (v2/v3), plus the "
        "private agent routes of globus_compute.protocol.agent.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    bucket = None
    if config.rate_limit is not None:
        burst = (
            config.rate_burst if config.rate_burst is not None else max(1.0, 10 * config.rate_limit)
        )
        bucket = TokenBucket(config.rate_limit, burst)
    app.add_middleware(LimitsMiddleware, max_body=config.max_request_bytes, bucket=bucket)

    @app.get("/v2/version", tags=["service"], summary="Service versions")
    async def version(service: Annotated[str | None, Query()] = None) -> Response:
        if service is None:
            return json_response(API_VERSION)
        return json_response(
            {
                "api": API_VERSION,
                "min_sdk_version": MIN_SDK_VERSION,
                "min_ep_version": MIN_ENDPOINT_VERSION,
                "min_endpoint_version": MIN_ENDPOINT_VERSION,
                "git_sha": f"globus-compute-{__version__}",
            }
        )

    for module in (routes_functions, routes_tasks, routes_endpoints, routes_agent):
        app.include_router(module.router)
    return app
