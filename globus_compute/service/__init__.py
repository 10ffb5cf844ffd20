"""The embedded Globus Compute service: REST API (reference v2/v3 routes), agent routes, SQLite.

Nothing here runs at import; ``create_app`` builds an app, ``serve`` runs one.
"""

from __future__ import annotations

from globus_compute.service.app import create_app
from globus_compute.service.config import ServiceConfig
from globus_compute.service.server import serve
from globus_compute.service.store import Store

__all__ = ["ServiceConfig", "Store", "create_app", "serve"]
