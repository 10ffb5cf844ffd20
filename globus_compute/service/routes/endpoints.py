"""Endpoint routes: register/update (v3), list, read, status, stop (lock), delete, allow-list.

The rules (same owner and name, same id; a registration updates only the settings it gives and
takes no task from the running agent) are ``actions/endpoints.py``'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from starlette.responses import Response

from globus_compute.service.actions import endpoints
from globus_compute.service.actions.lookup import visible_endpoint
from globus_compute.service.auth import CurrentUser
from globus_compute.service.bodies import JsonObject, json_response
from globus_compute.service.context import Ctx, ServiceContext
from globus_compute.service.records import User

router = APIRouter(tags=["endpoints"])

#: Endpoint metadata keys ``GET /v2/endpoints/{id}`` reports (None when the agent sent none).
_METADATA_KEYS = (
    "endpoint_config",
    "user_config_template",
    "user_config_schema",
    "description",
    "hostname",
    "local_user",
    "ip_address",
    "endpoint_version",
    "sdk_version",
    "python_version",
)


class EndpointRegistration(BaseModel):
    """``POST /v3/endpoints`` / ``PUT /v3/endpoints/{id}`` body (reference keys)."""

    model_config = ConfigDict(extra="allow")

    endpoint_name: StrictStr
    display_name: StrictStr | None = None
    metadata: JsonObject | None = None
    public: StrictBool | None = None
    allowed_functions: list[StrictStr] | None = None
    multi_user: StrictBool | None = None


async def _register(
    ctx: ServiceContext, user: User, body: EndpointRegistration, endpoint_id: str | None
) -> Response:
    eid = await ctx.call(
        endpoints.register_endpoint,
        user,
        body.endpoint_name,
        endpoint_id=endpoint_id,
        display_name=body.display_name,
        metadata=body.metadata,
        public=body.public,
        allowed_functions=body.allowed_functions,
    )
    return json_response(
        {"endpoint_id": eid, "name": body.endpoint_name, "lease_s": ctx.config.lease_s}
    )


@router.post("/v3/endpoints", summary="Register an endpoint")
async def register_endpoint(
    body: EndpointRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return await _register(ctx, user, body, None)


@router.put("/v3/endpoints/{endpoint_id}", summary="Register or update an endpoint by id")
async def update_endpoint(
    endpoint_id: str,
    body: EndpointRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return await _register(ctx, user, body, endpoint_id)


@router.get("/v2/endpoints", summary="List endpoints")
async def list_endpoints(
    user: CurrentUser,
    ctx: Ctx,
    role: Annotated[str, Query(pattern="^(owner|any)$")] = "owner",
) -> Response:
    eps = await ctx.call(endpoints.list_endpoints, user, "any" if role == "any" else "owner")
    return json_response(
        [
            {
                "uuid": e.id,
                "name": e.name,
                "display_name": e.display_name or e.name,
                "owner": e.owner_identity,
            }
            for e in eps
        ]
    )


@router.get("/v2/endpoints/{endpoint_id}", summary="Get an endpoint's metadata")
async def get_endpoint(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = await ctx.call(visible_endpoint, user, endpoint_id)
    doc: dict[str, Any] = {
        "uuid": ep.id,
        "name": ep.name,
        "display_name": ep.display_name or ep.name,
        "multi_user": False,
        "high_assurance": False,
        "public": ep.public,
        "owner": ep.owner_identity,
        "subscription_uuid": None,
        "subscription_admin_verified": False,
    }
    for key in _METADATA_KEYS:
        doc[key] = ep.metadata.get(key)
    return json_response(doc)


@router.get("/v2/endpoints/{endpoint_id}/status", summary="Get an endpoint's status")
async def get_endpoint_status(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    status = await ctx.call(endpoints.endpoint_status, user, endpoint_id)
    return json_response(
        {
            "status": "online" if status.online else "offline",
            "details": status.details,
            # Not in the reference document: when the agent was last heard from, so a client
            # can say how long work has waited on an offline endpoint.
            "last_heartbeat": status.last_heartbeat,
        }
    )


@router.post("/v3/endpoints/{endpoint_id}/lock", summary="Stop an endpoint")
async def lock_endpoint(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    eid, expiration = await ctx.call(endpoints.lock_endpoint, user, endpoint_id)
    return json_response({"endpoint_id": eid, "lock_expiration_timestamp": expiration})


@router.delete("/v2/endpoints/{endpoint_id}", summary="Delete an endpoint")
async def delete_endpoint(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    await ctx.call(endpoints.delete_endpoint, user, endpoint_id)
    return json_response({"result": 302})


@router.get("/v3/endpoints/{endpoint_id}/allowed_functions", summary="Get an endpoint's allow-list")
async def allowed_functions(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = await ctx.call(visible_endpoint, user, endpoint_id)
    doc: dict[str, Any] = {"endpoint_id": ep.id, "restricted": ep.allowed_functions is not None}
    if ep.allowed_functions is not None:
        doc["functions"] = ep.allowed_functions
    return json_response(doc)
