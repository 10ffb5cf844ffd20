"""``GET /openapi.json``: the service's OpenAPI schema, for callers with a token.

Like every route but ``GET /v2/version``, the schema needs a bearer token, so the rule the
guarantees page (``docs/guides/guarantees.md``) states has no exception to remember. (It
describes routes, not data, and is the same for every install.) The browsable ``/docs`` and
``/redoc`` pages are not served: a browser cannot send the bearer token they would need to
fetch the schema, and they load their scripts from a CDN, which a loopback service should not
invite::

    curl -H "Authorization: Bearer $(cat ~/.globus_compute/local/tokens/local.token)" \\
        http://127.0.0.1:5000/openapi.json
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from globus_compute.service.auth import CurrentUser
from globus_compute.service.bodies import json_response

router = APIRouter(tags=["service"])

#: Where the schema is served (FastAPI's usual place, which schema tools look for).
SCHEMA_PATH = "/openapi.json"


@router.get(SCHEMA_PATH, include_in_schema=False)
async def openapi_schema(request: Request, user: CurrentUser) -> Response:
    return json_response(request.app.openapi())
