"""The HTTP routes: parse the request, call one service function (``actions/``), shape the answer.

::

    version     GET /v2/version
    schema      GET /openapi.json (with a token, like everything but the version)
    functions   /v3/functions, /v2/functions/{id}
    tasks       /v3/endpoints/{id}/submit, /v2/tasks/{id}, /v2/batch_status, /v2/taskgroup/{id}
    endpoints   /v3/endpoints[/{id}], /v2/endpoints[/{id}[/status]], lock, allowed_functions
    agent       {AGENT_PREFIX}/{id}/heartbeat, claim, results (``protocol/agent.py``)

Every route authenticates its caller (``auth.py``) except the version route; hot routes parse
and answer JSON with ``orjson`` (``bodies.py``) and publish their body schemas (``openapi.py``).
"""

from __future__ import annotations

from fastapi import APIRouter

from globus_compute.service.routes import agent, endpoints, functions, schema, tasks, version

#: Every router of the app, in the order their operations appear in the OpenAPI schema.
ROUTERS: tuple[APIRouter, ...] = (
    version.router,
    functions.router,
    tasks.router,
    endpoints.router,
    agent.router,
    schema.router,
)
