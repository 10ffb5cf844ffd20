"""Task routes: submit (v3), task status, batch status (with the ``wait`` long-poll), task groups.

Submit is durable before it answers: the tasks are committed, then the endpoint's waiting claim
is woken. ``POST /v2/batch_status?wait=S`` is this service's extension for fast result delivery:
when none of the visible requested tasks is terminal, the request parks on in-memory wake-ups
until one is (or ``S`` seconds pass) and then answers the normal shape.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from globus_compute.protocol.agent import MAX_WAIT_S
from globus_compute.service.deps import (
    UUID_SCHEMA,
    Ctx,
    CurrentUser,
    ServiceContext,
    canonical_uuid,
    json_object,
    json_response,
    object_schema,
    path_uuid,
)
from globus_compute.service.errors import ServiceError, forbidden, invalid, not_found
from globus_compute.service.identity import (
    User,
    can_run_function,
    can_use_endpoint,
    endpoint_allows,
)
from globus_compute.service.store_tasks import TERMINAL_STATUSES

log = logging.getLogger(__name__)

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


def _optional(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise invalid(f"{key} must be {what}")
    return value


@router.post(
    "/v3/endpoints/{endpoint_id}/submit", summary="Submit tasks", openapi_extra=_SUBMIT_SCHEMA
)
async def submit(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    body = await json_object(request)
    eid = path_uuid(endpoint_id, "Endpoint")
    tasks = body.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise invalid("tasks must be a non-empty object mapping function ids to payload lists")
    serializers = _optional(body, "result_serializers", list, "a list of strings")
    if serializers is not None and not all(isinstance(s, str) for s in serializers):
        raise invalid("result_serializers must be a list of strings")
    spec = _optional(body, "resource_specification", dict, "an object")
    uec = _optional(body, "user_endpoint_config", dict, "an object")
    group = body.get("task_group_id")
    task_group_id = canonical_uuid(group) if group is not None else None

    ep = ctx.store.get_endpoint(eid)
    if ep is None or not can_use_endpoint(user, ep):
        raise not_found("Endpoint", eid)
    canonical: dict[str, str] = {}
    for key, payloads in tasks.items():
        fid = canonical_uuid(key)
        if fid is None:
            raise invalid(f"tasks key {key!r} is not a function UUID")
        if not isinstance(payloads, list) or not all(isinstance(p, str) for p in payloads):
            raise invalid(f"tasks[{key!r}] must be a list of payload strings")
        canonical[key] = fid
    functions = ctx.store.get_functions(set(canonical.values()))
    groups: set[str] | None = None
    for fid in set(canonical.values()):
        fn = functions.get(fid)
        if fn is not None and fn.owner != user.id and not fn.public and groups is None:
            groups = ctx.store.user_groups(user)
        if fn is None or not can_run_function(user, fn, groups or ()):
            raise not_found("Function", fid)
        if not endpoint_allows(ep, fid):
            raise forbidden(f"Function {fid} is not in the allowed functions of endpoint {eid}")
    pairs = [(canonical[key], p) for key, payloads in tasks.items() for p in payloads]
    if not pairs:
        raise invalid("tasks holds no payloads")
    try:
        task_group_id, task_ids = ctx.store.submit_tasks(
            user.id,
            eid,
            task_group_id,
            pairs,
            result_serializers=serializers,
            resource_specification=spec,
            user_endpoint_config=uec,
        )
    except PermissionError as exc:
        raise forbidden(str(exc)) from None
    ctx.notifier.notify_endpoints([eid])
    by_key: dict[str, list[str]] = {}
    it = iter(task_ids)
    for key, payloads in tasks.items():
        by_key[key] = [next(it) for _ in payloads]
    return json_response(
        {
            "request_id": request.state.request_id,
            "task_group_id": task_group_id,
            "endpoint_id": eid,
            "tasks": by_key,
        }
    )


@router.get("/v2/tasks/{task_id}", summary="Get a task's status and result")
async def get_task(
    task_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    tid = path_uuid(task_id, "Task")
    doc = ctx.store.task_documents(user.id, [tid]).get(tid)
    if doc is None:
        raise not_found("Task", tid)
    doc["task_id"] = task_id
    return json_response(doc)


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
    body = await json_object(request)
    raw_ids = body.get("task_ids")
    if not isinstance(raw_ids, list) or not all(isinstance(t, str) for t in raw_ids):
        raise invalid("task_ids must be a list of task id strings")
    sent_as: dict[str, list[str]] = {}
    for raw in raw_ids:
        tid = canonical_uuid(raw)
        if tid is not None:
            sent_as.setdefault(tid, []).append(raw)
    ids = list(sent_as)
    docs = ctx.store.task_documents(user.id, ids)
    if wait and docs and not any(d["status"] in TERMINAL_STATUSES for d in docs.values()):
        docs = await _wait_for_terminal(ctx, user, list(docs), min(wait, MAX_WAIT_S))
    results: dict[str, dict[str, Any]] = {}
    for tid, doc in docs.items():
        for raw in sent_as[tid]:
            results[raw] = doc if raw == tid else {**doc, "task_id": raw}
    return json_response({"response": "batch", "results": results})


async def _wait_for_terminal(
    ctx: ServiceContext, user: User, ids: list[str], wait: float
) -> dict[str, dict[str, Any]]:
    """Re-read ``ids`` each time one of them is reported, until one is terminal or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    keys = [("task", t) for t in ids]
    while True:
        remaining = deadline - loop.time()
        woke = await ctx.notifier.wait(keys, remaining) if remaining > 0 else False
        docs = ctx.store.task_documents(user.id, ids)
        if not woke or ctx.notifier.closed:
            return docs
        if any(d["status"] in TERMINAL_STATUSES for d in docs.values()):
            return docs


@router.get("/v2/taskgroup/{task_group_id}", summary="List the tasks of a task group")
async def get_task_group(
    task_group_id: str,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    tgid = path_uuid(task_group_id, "Task group")
    rows = ctx.store.task_group(user.id, tgid)
    if rows is None:
        raise not_found("Task group", tgid)
    tasks = [
        {
            "id": tid,
            "created_at": datetime.fromtimestamp(created, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            ),
        }
        for tid, created in rows
    ]
    return json_response({"taskgroup_id": tgid, "create_websockets_queue": False, "tasks": tasks})


@router.get(
    "/v2/get_amqp_result_connection_url", summary="Not offered: results are served over REST"
)
async def get_amqp_result_connection_url(user: CurrentUser) -> Response:
    raise ServiceError(
        404,
        "AMQP_NOT_AVAILABLE",
        "This service has no AMQP result queues: results are served over REST. Poll "
        "POST /v2/batch_status (optionally with ?wait=<seconds> to wait for the next result).",
    )
