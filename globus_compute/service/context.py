"""The service context: what every service function is handed, and how a route gets it.

One :class:`ServiceContext` per app (kept on ``app.state.ctx``): its settings, its storage and
its long-poll notifier. Service functions take it as their first argument rather than reaching
for globals, so a unit test builds one on a temp store and calls them without HTTP; the app
runs them with :meth:`ServiceContext.call`, on the database thread, off the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request

from globus_compute.service.config import ServiceConfig
from globus_compute.service.notify import Notifier
from globus_compute.service.store import Store

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ServiceContext:
    """The per-app objects service functions share."""

    config: ServiceConfig
    store: Store
    notifier: Notifier

    async def call(
        self, fn: Callable[Concatenate[ServiceContext, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(self, *args, **kwargs)`` on the database thread: one hop per service function.

        Raises:
            StorageError: The database is lost or the disk is full (``store/database.py``).
        """
        return await self.store.database.call(functools.partial(fn, self, *args, **kwargs))

    async def call_bulk(
        self, fn: Callable[Concatenate[ServiceContext, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like :meth:`call`, for work that may wait: it runs once no request's call is queued
        (purge slices, the later slices of a big read)."""
        return await self.store.database.call(
            functools.partial(fn, self, *args, **kwargs), bulk=True
        )


def get_ctx(request: Request) -> ServiceContext:
    """The context of the app serving ``request``."""
    return request.app.state.ctx


async def _ctx_dependency(request: Request) -> ServiceContext:
    # A coroutine: FastAPI runs a plain function dependency on a worker thread, one thread hop
    # per request for nothing.
    return get_ctx(request)


#: Route parameter type: the service context.
Ctx = Annotated[ServiceContext, Depends(_ctx_dependency)]
