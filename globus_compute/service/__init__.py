"""The embedded Globus Compute service: REST API (reference v2/v3 routes), agent routes, SQLite.

Nothing here runs at import; ``create_app`` builds an app, ``serve`` runs one. A request goes
through these layers, each importing only the ones below it::

    connections.GuardedH11Protocol  per connection: read deadlines, connections in all and per
                                    client address (server.py runs uvicorn with it)
    limits.LimitsMiddleware     authentication before any body is read; rate, body size,
                                bytes-in-flight and body time limits
    hot_routes.HotRoutes        submit, batch_status, claim and results answered without
                                FastAPI's per-request machinery (same answers as routes/)
    routes/                     HTTP only: parse the request, run one service function on the
                                database thread, shape the answer (auth.py, bodies.py,
                                openapi.py, errors.py)
    actions/                    the service functions: body checks, access rules (access.py),
                                store calls, and the notifier (notify.py) for what they changed
    store/                      SQLite: one Database (and its thread), one store per concept,
                                records.py values

``context.ServiceContext`` (config, store, notifier) is what every service function is handed;
``ctx.call(fn, ...)`` runs one on the database thread, so the event loop never waits on SQLite.
``server.serve`` listens on a loopback TCP port (for any client with a token) and on the state
dir's Unix socket (``globus_compute.local_socket``: for the owner's own clients, which must not
trust whoever holds a TCP port). The process's log is ``logs.py``'s.
"""

from __future__ import annotations

from globus_compute.service.app import create_app
from globus_compute.service.config import ServiceConfig
from globus_compute.service.server import serve
from globus_compute.service.store import Store

__all__ = ["ServiceConfig", "Store", "create_app", "serve"]
