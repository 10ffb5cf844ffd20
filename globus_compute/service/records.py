"""What the stores hand back: identities, functions, endpoints, and the outcome of a lease release.

Records are frozen snapshots of rows, so access rules (``access.py``) and service functions
(``actions/``) work on plain values and are unit-tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class User:
    """A local identity: its row id, its name, and the identity UUID clients see."""

    id: int
    name: str
    identity_id: str


@dataclass(frozen=True)
class FunctionRecord:
    """A registered function; ``code`` is stored verbatim and never unpickled."""

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
    """A registered endpoint and what its agent last reported."""

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


class LeaseRelease(NamedTuple):
    """Tasks taken back from endpoints: failed for good, or queued again.

    Whoever waits on them must be woken: the submitters of ``failed`` tasks and the agents of the
    endpoints in ``requeued`` (see :meth:`~globus_compute.service.notify.Notifier.notify_release`).
    """

    failed: list[str]
    requeued: dict[str, list[str]]
