"""Endpoint routes: register/update (v3), list, read, status, stop (lock), delete, allow-list.

The same owner and ``endpoint_name`` always get the same endpoint id; registering again means a
new agent process took over, so tasks the old one held are released (re-queued or failed).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from starlette.responses import Response

from globus_compute.service.deps import (
    Ctx,
    CurrentUser,
    ServiceContext,
    canonical_uuid,
    json_response,
    path_uuid,
)
from globus_compute.service.errors import ServiceError, forbidden, invalid, not_found
from globus_compute.service.identity import EndpointRecord, User, can_use_endpoint, owns_endpoint
from globus_compute.service.store import NameConflict

log = logging.getLogger(__name__)

router = APIRouter(tags=["endpoints"])

_EMPTY_STATUS = {
    "total_workers": 0,
    "idle_workers": 0,
    "pending_tasks": 0,
    "outstanding_tasks": 0,
    "managers": 0,
}


class EndpointRegistration(BaseModel):
    """``POST /v3/endpoints`` / ``PUT /v3/endpoints/{id}`` body (reference keys)."""

    model_config = ConfigDict(extra="allow")

    endpoint_name: StrictStr
    display_name: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    public: StrictBool | None = None
    allowed_functions: list[StrictStr] | None = None
    multi_user: StrictBool | None = None


def visible_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    """The endpoint ``raw_id`` if ``user`` may see it; 404 otherwise."""
    eid = path_uuid(raw_id, "Endpoint")
    ep = ctx.store.get_endpoint(eid)
    if ep is None or not can_use_endpoint(user, ep):
        raise not_found("Endpoint", eid)
    return ep


def owned_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    """The endpoint ``raw_id`` if ``user`` owns it; 403 if merely visible, else 404."""
    ep = visible_endpoint(ctx, user, raw_id)
    if not owns_endpoint(user, ep):
        raise forbidden(f"Only the owner of endpoint {ep.id} may do this")
    return ep


def _register(
    ctx: ServiceContext, user: User, body: EndpointRegistration, endpoint_id: str | None
) -> Response:
    if not body.endpoint_name:
        raise invalid("endpoint_name must not be empty")
    allowed = None
    if body.allowed_functions is not None:
        allowed = [canonical_uuid(f) for f in body.allowed_functions]
        if None in allowed:
            raise invalid("allowed_functions must be function UUIDs")
    try:
        eid, failed, requeued = ctx.store.register_endpoint(
            user,
            body.endpoint_name,
            endpoint_id=endpoint_id,
            display_name=body.display_name,
            metadata=body.metadata,
            public=bool(body.public),
            allowed_functions=allowed,  # type: ignore[arg-type]
        )
    except PermissionError as exc:
        raise forbidden(str(exc)) from None
    except NameConflict as exc:
        raise ServiceError(409, "CONFLICT", str(exc)) from None
    ctx.notifier.notify_tasks(failed)
    ctx.notifier.notify_endpoints(requeued)
    log.info("%s registered endpoint %s (%s)", user.name, eid, body.endpoint_name)
    return json_response(
        {"endpoint_id": eid, "name": body.endpoint_name, "lease_s": ctx.config.lease_s}
    )


@router.post("/v3/endpoints", summary="Register an endpoint")
async def register_endpoint(
    body: EndpointRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return _register(ctx, user, body, None)


@router.put("/v3/endpoints/{endpoint_id}", summary="Register or update an endpoint by id")
async def update_endpoint(
    endpoint_id: str,
    body: EndpointRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return _register(ctx, user, body, path_uuid(endpoint_id, "Endpoint"))


@router.get("/v2/endpoints", summary="List endpoints")
async def list_endpoints(
    user: CurrentUser,
    ctx: Ctx,
    role: Annotated[str, Query(pattern="^(owner|any)$")] = "owner",
) -> Response:
    eps = ctx.store.list_endpoints(user, include_public=role == "any")
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
    ep = visible_endpoint(ctx, user, endpoint_id)
    meta = ep.metadata
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
    for key in (
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
    ):
        doc[key] = meta.get(key)
    return json_response(doc)


@router.get("/v2/endpoints/{endpoint_id}/status", summary="Get an endpoint's status")
async def get_endpoint_status(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = visible_endpoint(ctx, user, endpoint_id)
    online = ep.last_heartbeat is not None and time.time() - ep.last_heartbeat < ctx.config.lease_s
    details = {**_EMPTY_STATUS, **(ep.status or {})} if online else dict(_EMPTY_STATUS)
    return json_response({"status": "online" if online else "offline", "details": details})


@router.post("/v3/endpoints/{endpoint_id}/lock", summary="Stop an endpoint")
async def lock_endpoint(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = owned_endpoint(ctx, user, endpoint_id)
    ctx.store.lock_endpoint(ep.id)
    return json_response(
        {"endpoint_id": ep.id, "lock_expiration_timestamp": time.time() + ctx.config.lease_s}
    )


@router.delete("/v2/endpoints/{endpoint_id}", summary="Delete an endpoint")
async def delete_endpoint(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = owned_endpoint(ctx, user, endpoint_id)
    failed = ctx.store.delete_endpoint(ep.id)
    ctx.notifier.notify_tasks(failed)
    ctx.notifier.notify_endpoints([ep.id])
    return json_response({"result": 302})


@router.get("/v3/endpoints/{endpoint_id}/allowed_functions", summary="Get an endpoint's allow-list")
async def allowed_functions(
    endpoint_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    ep = visible_endpoint(ctx, user, endpoint_id)
    doc: dict[str, Any] = {"endpoint_id": ep.id, "restricted": ep.allowed_functions is not None}
    if ep.allowed_functions is not None:
        doc["functions"] = ep.allowed_functions
    return json_response(doc)
