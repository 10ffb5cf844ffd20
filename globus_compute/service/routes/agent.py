"""The private agent routes of ``protocol/agent.py``: heartbeat (with the agent's start and
goodbye), claim (long poll), results.

Only the endpoint's owner may act as its agent (``actions/agent.py``); anyone else gets 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from globus_compute.protocol.agent import AGENT_PREFIX, MAX_WAIT_S, PHASE_STARTING, PHASE_STOPPING
from globus_compute.protocol.states import TaskState
from globus_compute.service.actions import agent
from globus_compute.service.auth import CurrentUser
from globus_compute.service.bodies import json_answer, json_object, json_response, parse_object
from globus_compute.service.context import Ctx, ServiceContext
from globus_compute.service.openapi import UUID_SCHEMA, object_schema
from globus_compute.service.records import User

router = APIRouter(prefix=AGENT_PREFIX, tags=["agent"])

_HEARTBEAT_SCHEMA = object_schema(
    {
        "status": {"type": "object"},
        "held": {"type": "array", "items": {"type": "string"}},
        "phase": {"type": "string", "enum": [PHASE_STARTING, PHASE_STOPPING]},
    },
    ["status"],
)
_CLAIM_SCHEMA = object_schema(
    {
        "max_tasks": {"type": "integer", "minimum": 1},
        "wait_s": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S},
    },
    ["max_tasks"],
)
_RESULTS_SCHEMA = object_schema(
    {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "task_id": UUID_SCHEMA,
                    "status": {
                        "type": "string",
                        "enum": [TaskState.SUCCESS.value, TaskState.FAILED.value],
                    },
                    "result": {"type": "string"},
                    "exception": {"type": "string"},
                    "completion_t": {"type": "string"},
                    "details": {"type": "object"},
                },
                "required": ["task_id", "status", "completion_t"],
            },
        }
    },
    ["results"],
)


@router.post("/{endpoint_id}/heartbeat", summary="Agent heartbeat", openapi_extra=_HEARTBEAT_SCHEMA)
async def heartbeat(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    body = await json_object(request)
    reply = await ctx.call(agent.heartbeat, user, endpoint_id, body)
    return json_response({"lease_s": ctx.config.lease_s, "stop": reply.stop, "drop": reply.drop})


@router.post("/{endpoint_id}/claim", summary="Agent claims tasks", openapi_extra=_CLAIM_SCHEMA)
async def claim(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return await answer_claim(ctx, user, endpoint_id, await request.body(), request.is_disconnected)


async def answer_claim(
    ctx: ServiceContext,
    user: User,
    endpoint_id: str,
    raw: bytes,
    disconnected: Callable[[], Awaitable[bool]],
) -> Response:
    """The claim route's answer (also served by ``hot_routes.py``)."""
    tasks = await agent.claim(ctx, user, endpoint_id, parse_object(raw), disconnected)
    size = sum(len(t["task_buffer"]) for t in tasks)
    return await json_answer({"tasks": tasks, "lease_s": ctx.config.lease_s}, size)


@router.post(
    "/{endpoint_id}/results", summary="Agent reports results", openapi_extra=_RESULTS_SCHEMA
)
async def results(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return await answer_results(ctx, user, endpoint_id, await request.body())


async def answer_results(ctx: ServiceContext, user: User, endpoint_id: str, raw: bytes) -> Response:
    """The results route's answer (also served by ``hot_routes.py``)."""
    body = parse_object(raw, lone_surrogates=True)
    accepted, ignored = await ctx.call(agent.report_results, user, endpoint_id, body)
    return json_response({"accepted": accepted, "ignored": ignored})
