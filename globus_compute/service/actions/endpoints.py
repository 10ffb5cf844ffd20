"""Endpoints: register (or update), list, status, stop (lock) and delete.

The same owner and ``endpoint_name`` always get the same endpoint id. A registration of an
existing endpoint is an update of the settings it gives, nothing more: what it leaves out is
kept (the owner's ``public``, ``allowed_functions`` and ``display_name`` survive the agent's own
registration at every start), and it takes no task from the running agent. Only a new agent
process's first heartbeat (``actions/agent.py``) releases what an earlier one held. Deleting an
endpoint fails its unfinished tasks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from globus_compute.protocol.agent import WorkerStatus
from globus_compute.protocol.ids import canonical_uuid
from globus_compute.service.actions.lookup import owned_endpoint, path_uuid, visible_endpoint
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import conflict, forbidden, invalid
from globus_compute.service.records import EndpointRecord, User
from globus_compute.service.store import NameConflict

log = logging.getLogger(__name__)

#: Cap on ``max_retries_on_system_failure``; also keeps the value within SQLite's integers.
MAX_RETRIES = 1000

#: The status details of an endpoint that is offline (or never said).
EMPTY_STATUS: WorkerStatus = {
    "total_workers": 0,
    "idle_workers": 0,
    "pending_tasks": 0,
    "outstanding_tasks": 0,
    "managers": 0,
}


@dataclass(frozen=True)
class EndpointStatus:
    """Whether an endpoint is online, its agent's last worker status if so, and when its
    agent was last heard from (a heartbeat or its goodbye; None if never)."""

    online: bool
    details: dict[str, Any]
    last_heartbeat: float | None = None


def register_endpoint(
    ctx: ServiceContext,
    user: User,
    name: str,
    *,
    endpoint_id: str | None = None,
    display_name: str | None = None,
    metadata: dict[str, Any] | None = None,
    public: bool | None = None,
    allowed_functions: list[str] | None = None,
) -> str:
    """Create ``user``'s endpoint ``name``, or update the settings given; return its id.

    Every setting left None keeps its stored value. Registering never releases a task: an
    update while the agent runs leaves it everything it holds.

    Args:
        endpoint_id: The path id of ``PUT /v3/endpoints/{id}``; None for ``POST``.
        metadata: The agent's metadata; ``max_retries_on_system_failure`` in it sets how many
            times a task lost with its endpoint is re-queued (0 when out of range; kept when
            the metadata does not say).
        allowed_functions: Function ids the endpoint runs exclusively; None keeps the stored
            restriction (a new endpoint runs any function).

    Raises:
        ApiError: 404 for an ``endpoint_id`` that is not a UUID, 422 for an empty name or
            allowed functions that are not UUIDs, 403 for another identity's endpoint id, 409
            for a name another endpoint of ``user`` has.
    """
    eid = path_uuid(endpoint_id, "Endpoint") if endpoint_id is not None else None
    if not name:
        raise invalid("endpoint_name must not be empty")
    allowed = None
    if allowed_functions is not None:
        parsed = [canonical_uuid(f) for f in allowed_functions]
        allowed = [f for f in parsed if f is not None]
        if len(allowed) != len(parsed):
            raise invalid("allowed_functions must be function UUIDs")
    try:
        eid, existed = ctx.store.endpoints.register_endpoint(
            user,
            name,
            endpoint_id=eid,
            display_name=display_name,
            metadata=metadata,
            public=public,
            allowed_functions=allowed,
            max_retries=_max_retries(metadata),
        )
    except PermissionError as exc:
        raise forbidden(str(exc)) from None
    except NameConflict as exc:
        raise conflict(str(exc)) from None
    log.info("%s %s endpoint %s (%s)", user.name, "updated" if existed else "registered", eid, name)
    return eid


def _max_retries(metadata: dict[str, Any] | None) -> int | None:
    """The retry setting in an agent's metadata; None when the metadata does not say."""
    if metadata is None or "max_retries_on_system_failure" not in metadata:
        return None
    value = metadata["max_retries_on_system_failure"]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RETRIES:
        return value
    return 0


def list_endpoints(
    ctx: ServiceContext, user: User, role: Literal["owner", "any"] = "owner"
) -> list[EndpointRecord]:
    """``user``'s endpoints; with ``role="any"`` also every public endpoint."""
    return ctx.store.endpoints.list_endpoints(user, include_public=role == "any")


def endpoint_status(ctx: ServiceContext, user: User, raw_id: str) -> EndpointStatus:
    """Online while the agent heartbeated within the last ``lease_s`` seconds and has not said
    goodbye (a graceful stop makes it offline at once)."""
    ep = visible_endpoint(ctx, user, raw_id)
    online = (
        ep.status is not None
        and ep.last_heartbeat is not None
        and time.time() - ep.last_heartbeat < ctx.config.lease_s
    )
    details = {**EMPTY_STATUS, **(ep.status or {})} if online else dict(EMPTY_STATUS)
    return EndpointStatus(online, details, ep.last_heartbeat)


def lock_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> tuple[str, float]:
    """Tell the endpoint's agent to stop at its next heartbeat (owner only).

    Returns:
        ``(endpoint_id, lock_expiration_timestamp)``.
    """
    ep = owned_endpoint(ctx, user, raw_id)
    ctx.store.endpoints.lock_endpoint(ep.id)
    return ep.id, time.time() + ctx.config.lease_s


def delete_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> None:
    """Delete an endpoint (owner only); its unfinished tasks fail with ``EndpointLost`` text."""
    ep = owned_endpoint(ctx, user, raw_id)
    with ctx.store.database.transaction():
        failed = ctx.store.tasks.fail_unfinished(ep.id)
        ctx.store.endpoints.delete_endpoint(ep.id)
    ctx.notifier.notify_tasks(failed)
    # The endpoint changed: a claim parked on it re-reads the queue.
    ctx.notifier.notify_endpoints([ep.id])
