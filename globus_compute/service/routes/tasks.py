"""Task routes: submit (v3), task status, batch status (with the ``wait`` long poll), task groups.

What a submit checks and queues, and how ``batch_status?wait=`` waits, is ``actions/tasks.py``.
A batch status answer that was full lists the ids it left out under ``deferred`` (an extension
the reference client ignores; it simply asks again for ids missing from ``results``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from globus_compute.protocol.agent import MAX_WAIT_S
from globus_compute.service.actions import tasks
from globus_compute.service.auth import CurrentUser
from globus_compute.service.bodies import json_answer, json_response, parse_object
from globus_compute.service.context import Ctx, ServiceContext
from globus_compute.service.errors import ApiError
from globus_compute.service.openapi import UUID_SCHEMA, object_schema
from globus_compute.service.records import User

router = APIRouter(tags=["tasks"])

_SUBMIT_SCHEMA = object_schema(
    {
        "tasks": {
            "type": "object",
            "description": "function id -> list of packed payloads (args, kwargs)",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "task_group_id": {"type": "string"},
        "create_queue": {"type": "boolean"},
        "result_serializers": {"type": "array", "items": {"type": "string"}},
        "resource_specification": {"type": "object"},
        "user_endpoint_config": {"type": "object"},
        "user_runtime": {"type": "object"},
    },
    ["tasks"],
)
_BATCH_STATUS_SCHEMA = object_schema(
    {"task_ids": {"type": "array", "items": UUID_SCHEMA}}, ["task_ids"]
)


@router.post(
    "/v3/endpoints/{endpoint_id}/submit", summary="Submit tasks", openapi_extra=_SUBMIT_SCHEMA
)
async def submit(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    return await answer_submit(
        ctx, user, endpoint_id, await request.body(), request.state.request_id
    )


async def answer_submit(
    ctx: ServiceContext, user: User, endpoint_id: str, raw: bytes, request_id: str
) -> Response:
    """The submit route's answer (also served by ``hot_routes.py``)."""
    body = parse_object(raw)
    submitted = await ctx.call(tasks.submit, user, endpoint_id, body)
    return json_response(
        {
            "request_id": request_id,
            "task_group_id": submitted.task_group_id,
            "endpoint_id": submitted.endpoint_id,
            "tasks": submitted.tasks,
        }
    )


@router.get("/v2/tasks/{task_id}", summary="Get a task's status and result")
async def get_task(
    task_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    doc = await ctx.call(tasks.task_document, user, task_id)
    doc["task_id"] = task_id
    return await json_answer(doc, len(doc.get("result") or doc.get("exception") or ""))


@router.post("/v2/batch_status", summary="Get many tasks", openapi_extra=_BATCH_STATUS_SCHEMA)
async def batch_status(
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            description=f"Extension: hold up to this many seconds (max {MAX_WAIT_S}) "
            "until one requested task is terminal",
        ),
    ] = None,
) -> Response:
    return await answer_batch_status(ctx, user, await request.body(), wait)


async def answer_batch_status(
    ctx: ServiceContext, user: User, raw: bytes, wait: float | None
) -> Response:
    """The batch status route's answer (also served by ``hot_routes.py``)."""
    status = await tasks.batch_status(ctx, user, parse_object(raw), wait)
    answer = {"response": "batch", "results": status.results}
    if status.deferred:
        answer["deferred"] = status.deferred
    return await json_answer(answer, status.text_bytes)


@router.get("/v2/taskgroup/{task_group_id}", summary="List the tasks of a task group")
async def get_task_group(
    task_group_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    tgid, rows = await ctx.call(tasks.task_group, user, task_group_id)
    members = [
        {
            "id": tid,
            "created_at": datetime.fromtimestamp(created, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            ),
        }
        for tid, created in rows
    ]
    answer = {"taskgroup_id": tgid, "create_websockets_queue": False, "tasks": members}
    return await json_answer(answer, 64 * len(members))


@router.get(
    "/v2/get_amqp_result_connection_url", summary="Not offered: results are served over REST"
)
async def get_amqp_result_connection_url(user: CurrentUser) -> Response:
    raise ApiError(
        404,
        "AMQP_NOT_AVAILABLE",
        "This service has no AMQP result queues: results are served over REST. Poll "
        "POST /v2/batch_status (optionally with ?wait=<seconds> to wait for the next result).",
    )
