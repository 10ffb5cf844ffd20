"""The private agent routes of ``agent_protocol.py``: heartbeat, claim (long-poll), results.

Only the endpoint's owner may act as its agent; anyone else gets 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from globus_compute.protocol.agent import AGENT_PREFIX, MAX_WAIT_S, ClaimedTask, TaskResult
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
from globus_compute.service.errors import invalid, not_found
from globus_compute.service.identity import EndpointRecord, User, owns_endpoint

log = logging.getLogger(__name__)

router = APIRouter(prefix=AGENT_PREFIX, tags=["agent"])

#: Upper bound on one claim, so a single response stays a few MB at most.
MAX_CLAIM = 10_000

_HEARTBEAT_SCHEMA = object_schema(
    {"status": {"type": "object"}, "held": {"type": "array", "items": {"type": "string"}}},
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
                    "status": {"type": "string", "enum": ["success", "failed"]},
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


def agent_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    eid = path_uuid(raw_id, "Endpoint")
    ep = ctx.store.get_endpoint(eid)
    if ep is None or not owns_endpoint(user, ep):
        raise not_found("Endpoint", eid)
    return ep


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@router.post("/{endpoint_id}/heartbeat", summary="Agent heartbeat", openapi_extra=_HEARTBEAT_SCHEMA)
async def heartbeat(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    body = await json_object(request)
    status = body.get("status", {})
    if not isinstance(status, dict):
        raise invalid("status must be an object")
    held = body.get("held")
    if held is not None and (
        not isinstance(held, list) or not all(isinstance(t, str) for t in held)
    ):
        raise invalid("held must be a list of task id strings")
    ep = agent_endpoint(ctx, user, endpoint_id)
    stop = ctx.store.heartbeat(ep.id, status, ctx.config.lease_s, held)
    return json_response({"lease_s": ctx.config.lease_s, "stop": stop})


@router.post("/{endpoint_id}/claim", summary="Agent claims tasks", openapi_extra=_CLAIM_SCHEMA)
async def claim(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    body = await json_object(request)
    max_tasks = body.get("max_tasks")
    wait_s = body.get("wait_s", 0.0)
    if not isinstance(max_tasks, int) or isinstance(max_tasks, bool) or max_tasks < 1:
        raise invalid("max_tasks must be a positive integer")
    if not _number(wait_s) or wait_s < 0:
        raise invalid("wait_s must be a non-negative number")
    ep = agent_endpoint(ctx, user, endpoint_id)
    max_tasks = min(max_tasks, MAX_CLAIM)
    lease_s = ctx.config.lease_s
    tasks = ctx.store.claim_tasks(ep.id, max_tasks, lease_s)
    if not tasks and wait_s > 0:
        tasks = await _wait_and_claim(ctx, request, ep.id, max_tasks, min(wait_s, MAX_WAIT_S))
    return json_response({"tasks": tasks, "lease_s": lease_s})


async def _wait_and_claim(
    ctx: ServiceContext, request: Request, eid: str, max_tasks: int, wait_s: float
) -> list[ClaimedTask]:
    """Park until a submit (or lease release) wakes this endpoint, then claim.

    A caller that hung up while parked claims nothing: its tasks would otherwise sit leased to a
    dead connection until the lease ran out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    keys = [("endpoint", eid)]
    while (remaining := deadline - loop.time()) > 0:
        woke = await ctx.notifier.wait(keys, remaining)
        if not woke or ctx.notifier.closed or await request.is_disconnected():
            return []
        tasks = ctx.store.claim_tasks(eid, max_tasks, ctx.config.lease_s)
        if tasks:
            return tasks
    return []


def _parse_result(item: Any) -> TaskResult:
    if not isinstance(item, dict):
        raise invalid("each result must be an object")
    tid = canonical_uuid(item.get("task_id"))
    if tid is None:
        raise invalid(f"result task_id {item.get('task_id')!r} is not a UUID")
    status = item.get("status")
    completion_t = item.get("completion_t")
    if _number(completion_t):
        completion_t = str(completion_t)
    if not isinstance(completion_t, str):
        raise invalid(f"result of {tid}: completion_t must be a string of unix seconds")
    out: TaskResult = {"task_id": tid, "status": status, "completion_t": completion_t}  # type: ignore[typeddict-item]
    if status == "success":
        if not isinstance(item.get("result"), str):
            raise invalid(f"result of {tid}: a success needs a serialized 'result' string")
        out["result"] = item["result"]
    elif status == "failed":
        if not isinstance(item.get("exception"), str):
            raise invalid(f"result of {tid}: a failure needs an 'exception' text")
        out["exception"] = item["exception"]
    else:
        raise invalid(f"result of {tid}: status must be 'success' or 'failed'")
    details = item.get("details")
    if details is not None:
        if not isinstance(details, dict):
            raise invalid(f"result of {tid}: details must be an object")
        out["details"] = details
    return out


@router.post(
    "/{endpoint_id}/results", summary="Agent reports results", openapi_extra=_RESULTS_SCHEMA
)
async def results(
    endpoint_id: str,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
) -> Response:
    body = await json_object(request)
    items = body.get("results")
    if not isinstance(items, list):
        raise invalid("results must be a list")
    parsed = [_parse_result(i) for i in items]
    ep = agent_endpoint(ctx, user, endpoint_id)
    accepted = ctx.store.store_results(ep.id, parsed) if parsed else 0
    ctx.notifier.notify_tasks(r["task_id"] for r in parsed)
    return json_response({"accepted": accepted, "ignored": len(parsed) - accepted})
