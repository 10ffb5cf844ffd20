"""Who is calling, and what they may touch.

Identities are local users with bearer tokens; the database keeps only the sha256 of a token, so
a leaked database grants nothing. The access rules are plain functions of records so that they
are unit-tested without HTTP:

- a function is runnable (and readable) by its owner, members of its ``group``, or anyone when
  ``public``; only its owner may delete it;
- an endpoint is usable by its owner, or anyone when ``public``; only its owner may manage it;
- a task document is visible only to its submitter.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


def hash_token(token: str) -> str:
    """The stored form of a bearer token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    identity_id: str


@dataclass(frozen=True)
class FunctionRecord:
    id: str
    owner: int
    name: str
    code: str
    description: str | None
    meta: dict[str, Any]
    public: bool
    group_id: str | None


@dataclass(frozen=True)
class EndpointRecord:
    id: str
    owner: int
    owner_identity: str
    name: str
    display_name: str | None
    metadata: dict[str, Any]
    public: bool
    allowed_functions: list[str] | None
    last_heartbeat: float | None
    status: dict[str, Any] | None
    stop: bool


def can_run_function(user: User, fn: FunctionRecord, user_groups: Collection[str]) -> bool:
    """Whether ``user`` may read ``fn`` and submit tasks that run it."""
    return (
        fn.owner == user.id or fn.public or (fn.group_id is not None and fn.group_id in user_groups)
    )


def can_use_endpoint(user: User, ep: EndpointRecord) -> bool:
    """Whether ``user`` may see ``ep`` and send tasks to it."""
    return ep.owner == user.id or ep.public


def owns_endpoint(user: User, ep: EndpointRecord) -> bool:
    """Only the owner may lock, delete, re-register or act as the agent of ``ep``."""
    return ep.owner == user.id


def endpoint_allows(ep: EndpointRecord, function_id: str) -> bool:
    """An endpoint registered with ``allowed_functions`` runs only those functions."""
    return ep.allowed_functions is None or function_id in ep.allowed_functions
