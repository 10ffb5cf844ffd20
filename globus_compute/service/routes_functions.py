"""Function routes: register (v3), read and delete (v2).

Function code is stored and returned verbatim: the service cannot and does not unpickle it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
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
from globus_compute.service.errors import forbidden, invalid, not_found
from globus_compute.service.identity import FunctionRecord, User, can_run_function

log = logging.getLogger(__name__)

router = APIRouter(tags=["functions"])


class FunctionRegistration(BaseModel):
    """``POST /v3/functions`` body, as the reference SDK sends it."""

    model_config = ConfigDict(extra="allow")

    function_name: StrictStr
    function_code: StrictStr
    serialized: StrictBool = True
    meta: dict[str, Any] = {}
    description: StrictStr | None = None
    public: StrictBool = False
    group: StrictStr | None = None
    ha_endpoint_id: StrictStr | None = None


def visible_function(ctx: ServiceContext, user: User, raw_id: str) -> FunctionRecord:
    """The function ``raw_id`` if ``user`` may read it; 404 otherwise (nothing leaked)."""
    fid = path_uuid(raw_id, "Function")
    fn = ctx.store.get_function(fid)
    if fn is None or not can_run_function(user, fn, ctx.store.user_groups(user)):
        raise not_found("Function", fid)
    return fn


@router.post("/v3/functions", summary="Register a function")
async def register_function(
    body: FunctionRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    if not body.function_name:
        raise invalid("function_name must not be empty")
    if not body.function_code:
        raise invalid("function_code must not be empty")
    group_id = None
    if body.group is not None:
        group_id = canonical_uuid(body.group)
        if group_id is None:
            raise invalid(f"group {body.group!r} is not a UUID")
    if body.ha_endpoint_id is not None and (body.public or group_id):
        raise invalid("ha_endpoint_id cannot be combined with public or group")
    fid = ctx.store.register_function(
        user,
        body.function_name,
        body.function_code,
        serialized=body.serialized,
        description=body.description,
        meta=body.meta,
        public=body.public,
        group_id=group_id,
    )
    log.debug("%s registered function %s (%s)", user.name, fid, body.function_name)
    return json_response({"function_uuid": fid})


@router.get("/v2/functions/{function_id}", summary="Get a function")
async def get_function(
    function_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    fn = visible_function(ctx, user, function_id)
    return json_response(
        {
            "function_uuid": fn.id,
            "function_name": fn.name,
            "function_code": fn.code,
            "description": fn.description,
            "metadata": fn.meta,
            "public": fn.public,
            "group": fn.group_id,
        }
    )


@router.delete("/v2/functions/{function_id}", summary="Delete a function")
async def delete_function(
    function_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    fn = visible_function(ctx, user, function_id)
    if fn.owner != user.id:
        raise forbidden(f"Only the owner of function {fn.id} may delete it")
    ctx.store.delete_function(fn.id)
    return json_response({"result": 302})
