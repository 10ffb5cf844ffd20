"""Who may touch what: the access rules, as plain functions of records.

Identities are local users with bearer tokens (``tokens.py``). The rules are functions of
records so that they are unit-tested without HTTP or a database:

- a function is runnable (and readable) by its owner, members of its ``group``, or anyone when
  ``public``; only its owner may delete it;
- an endpoint is usable by its owner, or anyone when ``public``; only its owner may manage it;
- a task document is visible only to its submitter (the task store filters by owner).

Refusals that must not reveal whether something exists are 404s; applying a rule and answering
404 is written once, in ``actions/lookup.py``.
"""

from __future__ import annotations

from collections.abc import Collection

from globus_compute.service.records import EndpointRecord, FunctionRecord, User


def can_run_function(user: User, fn: FunctionRecord, user_groups: Collection[str]) -> bool:
    """Whether ``user`` may read ``fn`` and submit tasks that run it."""
    return (
        fn.owner == user.id or fn.public or (fn.group_id is not None and fn.group_id in user_groups)
    )


def needs_groups(user: User, fn: FunctionRecord) -> bool:
    """Whether deciding :func:`can_run_function` needs ``user``'s groups (one more query)."""
    return fn.owner != user.id and not fn.public


def owns_function(user: User, fn: FunctionRecord) -> bool:
    """Only the owner may delete ``fn``."""
    return fn.owner == user.id


def can_use_endpoint(user: User, ep: EndpointRecord) -> bool:
    """Whether ``user`` may see ``ep`` and send tasks to it."""
    return ep.owner == user.id or ep.public


def owns_endpoint(user: User, ep: EndpointRecord) -> bool:
    """Only the owner may lock, delete, re-register or act as the agent of ``ep``."""
    return ep.owner == user.id


def endpoint_allows(ep: EndpointRecord, function_id: str) -> bool:
    """An endpoint registered with ``allowed_functions`` runs only those functions."""
    return ep.allowed_functions is None or function_id in ep.allowed_functions
