"""What an endpoint's agent does through the private routes: heartbeat, claim, report results.

Only the endpoint's owner may act as its agent; anyone else gets 404, as if it did not exist.
A result's ``details.endpoint_id``, if it has details, is set here to the endpoint that reported
it.
A claim is a long poll: with nothing queued it parks until a submit or a lease release wakes
the endpoint (or ``wait_s`` passes). Results are idempotent: one for a task that is already
terminal is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from globus_compute.protocol.agent import MAX_WAIT_S, ClaimedTask, TaskResult
from globus_compute.protocol.ids import canonical_uuid
from globus_compute.protocol.states import TaskState
from globus_compute.service.actions.lookup import agent_endpoint
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import invalid
from globus_compute.service.records import User

log = logging.getLogger(__name__)

#: Upper bound on one claim, so a single response stays a few MB at most.
MAX_CLAIM = 10_000

_SUCCESS = TaskState.SUCCESS.value
_FAILED = TaskState.FAILED.value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def heartbeat(ctx: ServiceContext, user: User, raw_endpoint_id: str, body: dict[str, Any]) -> bool:
    """Mark the endpoint online and renew the leases of the tasks its agent holds.

    Args:
        body: ``status`` (the agent's worker status) and optionally ``held`` (the ids of the
            tasks it holds; without it, every lease of the endpoint is renewed).

    Returns:
        The endpoint's stop flag (raised by ``POST /v3/endpoints/{id}/lock``).
    """
    status = body.get("status", {})
    if not isinstance(status, dict):
        raise invalid("status must be an object")
    held = body.get("held")
    if held is not None and (
        not isinstance(held, list) or not all(isinstance(t, str) for t in held)
    ):
        raise invalid("held must be a list of task id strings")
    ep = agent_endpoint(ctx, user, raw_endpoint_id)
    with ctx.store.database.transaction():
        stop = ctx.store.endpoints.record_heartbeat(ep.id, status)
        ctx.store.leases.renew_leases(ep.id, ctx.config.lease_s, held)
    return stop


async def claim(
    ctx: ServiceContext,
    user: User,
    raw_endpoint_id: str,
    body: dict[str, Any],
    disconnected: Callable[[], Awaitable[bool]],
) -> list[ClaimedTask]:
    """Lease up to ``max_tasks`` queued tasks; with none queued, wait up to ``wait_s`` for some.

    Args:
        body: ``max_tasks`` (at least 1; at most ``MAX_CLAIM`` are handed out) and optionally
            ``wait_s`` (capped at ``MAX_WAIT_S``).
        disconnected: Whether the caller has hung up; asked after each wake-up.
    """
    max_tasks = body.get("max_tasks")
    wait_s = body.get("wait_s", 0.0)
    if not isinstance(max_tasks, int) or isinstance(max_tasks, bool) or max_tasks < 1:
        raise invalid("max_tasks must be a positive integer")
    if not _number(wait_s) or wait_s < 0:
        raise invalid("wait_s must be a non-negative number")
    ep = agent_endpoint(ctx, user, raw_endpoint_id)
    max_tasks = min(max_tasks, MAX_CLAIM)
    tasks = ctx.store.tasks.claim_tasks(ep.id, max_tasks, ctx.config.lease_s)
    if not tasks and wait_s > 0:
        tasks = await _wait_and_claim(ctx, ep.id, max_tasks, min(wait_s, MAX_WAIT_S), disconnected)
    return tasks


async def _wait_and_claim(
    ctx: ServiceContext,
    eid: str,
    max_tasks: int,
    wait_s: float,
    disconnected: Callable[[], Awaitable[bool]],
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
        if not woke or ctx.notifier.closed or await disconnected():
            return []
        tasks = ctx.store.tasks.claim_tasks(eid, max_tasks, ctx.config.lease_s)
        if tasks:
            return tasks
    return []


def parse_result(item: Any) -> TaskResult:
    """One reported result, checked: a canonical task id, a state, its value or its text.

    Raises:
        ApiError: 422 naming what is wrong with the result.
    """
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
    if status == _SUCCESS:
        if not isinstance(item.get("result"), str):
            raise invalid(f"result of {tid}: a success needs a serialized 'result' string")
        out["result"] = item["result"]
    elif status == _FAILED:
        if not isinstance(item.get("exception"), str):
            raise invalid(f"result of {tid}: a failure needs an 'exception' text")
        out["exception"] = item["exception"]
    else:
        raise invalid(f"result of {tid}: status must be {_SUCCESS!r} or {_FAILED!r}")
    details = item.get("details")
    if details is not None:
        if not isinstance(details, dict):
            raise invalid(f"result of {tid}: details must be an object")
        out["details"] = details
    return out


def report_results(
    ctx: ServiceContext, user: User, raw_endpoint_id: str, body: dict[str, Any]
) -> tuple[int, int]:
    """Record the terminal results an agent reports; wake whoever waits on those tasks.

    Returns:
        ``(accepted, ignored)``: how many were new, and how many were for tasks already
        terminal, unknown, or of another endpoint.
    """
    items = body.get("results")
    if not isinstance(items, list):
        raise invalid("results must be a list")
    parsed = [parse_result(i) for i in items]
    ep = agent_endpoint(ctx, user, raw_endpoint_id)
    for result in parsed:
        # Which endpoint ran a task is the service's to say, not the agent's: submitters decide
        # by it whether to unpickle the result (an agent could claim to be one of theirs).
        # Results without details keep none (the reference SDK warns about details that lack
        # versions); a Client reads no dill result of an endpoint it cannot identify.
        if "details" in result:
            result["details"] = {**result["details"], "endpoint_id": ep.id}
    accepted = ctx.store.tasks.store_results(ep.id, parsed) if parsed else 0
    ctx.notifier.notify_tasks(r["task_id"] for r in parsed)
    return accepted, len(parsed) - accepted
