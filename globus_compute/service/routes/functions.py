"""Function routes: register (v3), read and delete (v2).

Function code is stored and returned verbatim: the service cannot and does not unpickle it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from starlette.responses import Response

from globus_compute.service.actions import functions
from globus_compute.service.actions.lookup import visible_function
from globus_compute.service.auth import CurrentUser
from globus_compute.service.bodies import JsonObject, json_answer, json_response
from globus_compute.service.context import Ctx

router = APIRouter(tags=["functions"])


class FunctionRegistration(BaseModel):
    """``POST /v3/functions`` body, as the reference SDK sends it."""

    model_config = ConfigDict(extra="allow")

    function_name: StrictStr
    function_code: StrictStr
    serialized: StrictBool = True
    meta: JsonObject = {}
    description: StrictStr | None = None
    public: StrictBool = False
    group: StrictStr | None = None
    ha_endpoint_id: StrictStr | None = None


@router.post("/v3/functions", summary="Register a function")
async def register_function(
    body: FunctionRegistration,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    fid = await ctx.call(
        functions.register_function,
        user,
        name=body.function_name,
        code=body.function_code,
        serialized=body.serialized,
        meta=body.meta,
        description=body.description,
        public=body.public,
        group=body.group,
        ha_endpoint_id=body.ha_endpoint_id,
    )
    return json_response({"function_uuid": fid})


@router.get("/v2/functions/{function_id}", summary="Get a function")
async def get_function(
    function_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    fn = await ctx.call(visible_function, user, function_id)
    return await json_answer(
        {
            "function_uuid": fn.id,
            "function_name": fn.name,
            "function_code": fn.code,
            "description": fn.description,
            "metadata": fn.meta,
            "public": fn.public,
            "group": fn.group_id,
        },
        len(fn.code),
    )


@router.delete("/v2/functions/{function_id}", summary="Delete a function")
async def delete_function(
    function_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    await ctx.call(functions.delete_function, user, function_id)
    return json_response({"result": 302})
