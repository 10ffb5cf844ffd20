"""Finding what a caller may touch: parse the id, load the record, apply the rule, else 404.

A caller refused a resource it may not see learns nothing about it: unknown, deleted and
forbidden look the same (404). Only a resource the caller may see but not manage gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from globus_compute.protocol.ids import canonical_uuid
from globus_compute.service.access import (
    can_run_function,
    can_use_endpoint,
    needs_groups,
    owns_endpoint,
)
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import ApiError, forbidden, not_found
from globus_compute.service.records import EndpointRecord, FunctionRecord, User

R = TypeVar("R")


def path_uuid(value: str, what: str) -> str:
    """A path id parsed case-insensitively; 404 for something that is not a UUID."""
    parsed = canonical_uuid(value)
    if parsed is None:
        raise ApiError(404, "NOT_FOUND", f"{what} {value!r} is not a valid UUID")
    return parsed


def accessible(record: R | None, allowed: Callable[[R], bool], what: str, ident: str) -> R:
    """``record`` if it exists and ``allowed(record)``; a 404 naming ``what`` otherwise."""
    if record is None or not allowed(record):
        raise not_found(what, ident)
    return record


def groups_for(ctx: ServiceContext, user: User, fn: FunctionRecord | None) -> Collection[str]:
    """``user``'s groups if deciding access to ``fn`` needs them (else none: one query saved)."""
    if fn is not None and needs_groups(user, fn):
        return ctx.store.groups.user_groups(user)
    return ()


def runnable_function(
    user: User, fn: FunctionRecord | None, groups: Collection[str], function_id: str
) -> FunctionRecord:
    """``fn`` (the function ``function_id`` as loaded) if ``user``, in ``groups``, may run it."""
    return accessible(fn, lambda f: can_run_function(user, f, groups), "Function", function_id)


def visible_function(ctx: ServiceContext, user: User, raw_id: str) -> FunctionRecord:
    """The function ``raw_id`` if ``user`` may read (and run) it."""
    fid = path_uuid(raw_id, "Function")
    fn = ctx.store.functions.get_function(fid)
    return runnable_function(user, fn, groups_for(ctx, user, fn), fid)


def visible_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    """The endpoint ``raw_id`` if ``user`` may see it and send tasks to it."""
    eid = path_uuid(raw_id, "Endpoint")
    ep = ctx.store.endpoints.get_endpoint(eid)
    return accessible(ep, lambda e: can_use_endpoint(user, e), "Endpoint", eid)


def owned_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    """The endpoint ``raw_id`` if ``user`` owns it; 403 if merely visible, else 404."""
    ep = visible_endpoint(ctx, user, raw_id)
    if not owns_endpoint(user, ep):
        raise forbidden(f"Only the owner of endpoint {ep.id} may do this")
    return ep


def agent_endpoint(ctx: ServiceContext, user: User, raw_id: str) -> EndpointRecord:
    """The endpoint ``raw_id`` if ``user`` may act as its agent (owners only; others get 404)."""
    eid = path_uuid(raw_id, "Endpoint")
    ep = ctx.store.endpoints.get_endpoint(eid)
    return accessible(ep, lambda e: owns_endpoint(user, e), "Endpoint", eid)
