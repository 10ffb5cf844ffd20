"""What an endpoint's agent does through the private routes: heartbeat, claim, report results.

Only the endpoint's owner may act as its agent; anyone else gets 404, as if it did not exist.
A heartbeat renews the leases of the tasks the agent holds and tells it which of them are no
longer its; the first heartbeat of an agent process takes over from the previous one (its tasks
are released), and the last one says goodbye (the endpoint is offline at once). A claim is a
long poll: with nothing queued it parks until a submit or a lease release wakes the endpoint
(or ``wait_s`` passes). Results are idempotent: one for a task that is already terminal is
ignored. A result's ``details.endpoint_id``, if it has details, is set here to the endpoint
that reported it. A result the service cannot store as text fails that task alone, with the
reason; the rest of its batch is stored as reported. Every store step runs on the database
thread (the routes call these functions with ``ctx.call``; a claim makes one call per wake-up).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from globus_compute.errors import SerializationError
from globus_compute.protocol.agent import (
    MAX_WAIT_S,
    PHASE_STARTING,
    PHASE_STOPPING,
    ClaimedTask,
    TaskResult,
)
from globus_compute.protocol.ids import canonical_uuid
from globus_compute.protocol.results import completion_time
from globus_compute.protocol.states import TaskState
from globus_compute.service.actions.lookup import agent_endpoint, path_uuid
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import invalid
from globus_compute.service.records import LeaseRelease, User

log = logging.getLogger(__name__)

#: Most tasks one claim hands out (its bytes are bounded by ``max_answer_bytes``).
MAX_CLAIM = 10_000

_SUCCESS = TaskState.SUCCESS.value
_FAILED = TaskState.FAILED.value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class HeartbeatReply:
    """What a heartbeat answers: the stop flag and the held tasks the agent must drop."""

    stop: bool
    drop: list[str]


def heartbeat(
    ctx: ServiceContext, user: User, raw_endpoint_id: str, body: dict[str, Any]
) -> HeartbeatReply:
    """Mark the endpoint online (or, on a goodbye, offline) and renew its held leases.

    Args:
        body: ``status`` (the agent's worker status), optionally ``held`` (the ids of the
            tasks it holds; without it, every lease of the endpoint is renewed) and ``phase``:
            ``"starting"`` for a new agent process (every lease the endpoint held is released:
            it belonged to the previous process, which is gone; a stop flag is cleared),
            ``"stopping"`` for its goodbye (the endpoint goes offline; the tasks still held
            are released).

    Returns:
        The endpoint's stop flag (raised by ``POST /v3/endpoints/{id}/lock``) and the held
        tasks the service has already resolved.
    """
    status = body.get("status", {})
    if not isinstance(status, dict):
        raise invalid("status must be an object")
    held = body.get("held")
    if held is not None and (
        not isinstance(held, list) or not all(isinstance(t, str) for t in held)
    ):
        raise invalid("held must be a list of task id strings")
    phase = body.get("phase")
    if phase not in (None, PHASE_STARTING, PHASE_STOPPING):
        raise invalid(f"phase must be {PHASE_STARTING!r} or {PHASE_STOPPING!r}")
    ep = agent_endpoint(ctx, user, raw_endpoint_id)
    release = LeaseRelease([], {})
    drop: list[str] = []
    with ctx.store.database.transaction():
        if phase == PHASE_STOPPING:
            ctx.store.endpoints.record_goodbye(ep.id)
            release = ctx.store.leases.release_stopped(ep.id, held or [])
            stop = ep.stop
        else:
            if phase == PHASE_STARTING:
                release = ctx.store.leases.release_restarted(ep.id)
            stop = ctx.store.endpoints.record_heartbeat(
                ep.id, status, starting=phase == PHASE_STARTING
            )
            drop = ctx.store.leases.renew_leases(ep.id, ctx.config.lease_s, held)
    ctx.notifier.notify_release(release)
    if release.failed or release.requeued:
        log.info("endpoint %s %s: released its tasks", ep.id, phase)
    if drop:
        log.warning(
            "endpoint %s held %d task(s) already resolved; told it to drop them", ep.id, len(drop)
        )
    return HeartbeatReply(stop, drop)


async def claim(
    ctx: ServiceContext,
    user: User,
    raw_endpoint_id: str,
    body: dict[str, Any],
    disconnected: Callable[[], Awaitable[bool]],
) -> list[ClaimedTask]:
    """Lease up to ``max_tasks`` queued tasks; with none queued, wait up to ``wait_s`` for some.

    One claim hands out at most ``max_answer_bytes`` of payloads (always at least one task).

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
    eid = path_uuid(raw_endpoint_id, "Endpoint")
    max_tasks = min(max_tasks, MAX_CLAIM)
    if wait_s <= 0:
        return await ctx.call(claim_now, user, eid, max_tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait_s, MAX_WAIT_S)
    # Listening before the first claim: a submit committed after it always wakes this one.
    with ctx.notifier.listen([("endpoint", eid)]) as listener:
        tasks = await ctx.call(claim_now, user, eid, max_tasks)
        while not tasks and (remaining := deadline - loop.time()) > 0:
            woke = await listener.wait(remaining)
            # A caller that hung up claims nothing: its tasks would otherwise sit leased to a
            # dead connection until the lease ran out.
            if not woke or ctx.notifier.closed or await disconnected():
                return []
            tasks = await ctx.call(claim_queued, eid, max_tasks)
    return tasks


def claim_now(ctx: ServiceContext, user: User, eid: str, max_tasks: int) -> list[ClaimedTask]:
    """Check that ``user`` may act as the agent of ``eid`` (else 404), then claim."""
    agent_endpoint(ctx, user, eid)
    return claim_queued(ctx, eid, max_tasks)


def claim_queued(ctx: ServiceContext, eid: str, max_tasks: int) -> list[ClaimedTask]:
    """Lease what is queued for ``eid``, within one answer's bytes."""
    return ctx.store.tasks.claim_tasks(
        eid, max_tasks, ctx.config.lease_s, ctx.config.max_answer_bytes
    )


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
    try:
        accepted = ctx.store.tasks.store_results(ep.id, parsed) if parsed else 0
    except (UnicodeEncodeError, TypeError):
        # Text that is not Unicode (a lone surrogate) cannot be stored. Rare, so only now is
        # each result checked; the batch's transaction was rolled back and is stored again.
        parsed = [storable_result(r) for r in parsed]
        accepted = ctx.store.tasks.store_results(ep.id, parsed)
    ctx.notifier.notify_tasks(r["task_id"] for r in parsed)
    return accepted, len(parsed) - accepted


def storable_result(result: TaskResult) -> TaskResult:
    """``result`` with every text valid Unicode, as the database stores text.

    An exception text keeps its content, each unencodable character written as its escape
    (``\\ud800``), with a note saying so. A serialized value must not be altered: that task
    fails with the reason. ``details`` that are not valid text are dropped.
    """
    out: dict[str, Any] = dict(result)
    details = out.get("details")
    if details is not None and not _is_text(_strings_of(details)):
        del out["details"]
        log.warning("the details of task %s are not valid text; dropped", out["task_id"])
    if not _is_text(out["completion_t"]):
        out["completion_t"] = completion_time()
    exception = out.get("exception")
    if isinstance(exception, str) and not _is_text(exception):
        out["exception"] = (
            exception.encode("utf-8", "backslashreplace").decode("utf-8")
            + "\n(The endpoint's text was not valid Unicode: each character that could not be "
            "stored is shown as its \\u escape.)\n"
        )
    value = out.get("result")
    if isinstance(value, str) and not _is_text(value):
        out.pop("result")
        out["status"] = _FAILED
        out["exception"] = (
            f"{SerializationError.__module__}.{SerializationError.__name__}: the endpoint "
            f"reported a result for task {out['task_id']} that the service cannot store: the "
            "serialized value is not valid Unicode text (it holds a lone surrogate).\n"
        )
    return out  # type: ignore[return-value]


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings_of(value: Any) -> str:
    """Every string inside ``value`` (a JSON document), joined: checked as one text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "".join(_strings_of(k) + _strings_of(v) for k, v in value.items())
    if isinstance(value, list):
        return "".join(_strings_of(v) for v in value)
    return ""
