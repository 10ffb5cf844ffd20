"""The service context: what every service function is handed, and how a route gets it.

One :class:`ServiceContext` per app (kept on ``app.state.ctx``): its settings, its storage and
its long-poll notifier. Service functions take it as their first argument rather than reaching
for globals, so a unit test builds one on a temp store and calls them without HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from globus_compute.service.config import ServiceConfig
from globus_compute.service.notify import Notifier
from globus_compute.service.store import Store


@dataclass
class ServiceContext:
    """The per-app objects service functions share."""

    config: ServiceConfig
    store: Store
    notifier: Notifier


def get_ctx(request: Request) -> ServiceContext:
    """The context of the app serving ``request``."""
    return request.app.state.ctx


#: Route parameter type: the service context.
Ctx = Annotated[ServiceContext, Depends(get_ctx)]
