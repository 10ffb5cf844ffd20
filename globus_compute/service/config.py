"""Settings of one embedded service instance.

Everything a deployment may tune lives in :class:`ServiceConfig`; the app factory reads it when
called, never at import, so tests build many differently configured services in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from globus_compute import state_dir as state_dir_mod

#: The reference service's request body limit (docs/limits.rst); also applies to registration.
MAX_REQUEST_BYTES = 10 * 1024 * 1024

#: The hosted service forgets abandoned tasks after two weeks (its Redis TTL).
UNRETRIEVED_TTL_S = 14 * 24 * 3600.0

#: One answer carries at most this many bytes of results (or claimed payloads); the ids left
#: out are asked for again. A single document bigger than this still goes, alone.
MAX_ANSWER_BYTES = 32 * 1024 * 1024

#: Request bodies being received at once, in bytes: by everyone, and by one identity (which
#: must fit the largest agent body, see ``limits.AGENT_BODY_FACTOR``).
MAX_BODY_BYTES_IN_FLIGHT = 256 * 1024 * 1024
MAX_CLIENT_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024


@dataclass
class ServiceConfig:
    """How one service instance behaves.

    Attributes:
        state_dir: Directory holding the database and token files (see ``state_dir.py``).
        lease_s: How long a claimed task stays leased without a heartbeat; also how long an
            endpoint counts as online after its last heartbeat.
        result_retention_s: How long a result is kept after its submitter first fetched it.
        unretrieved_ttl_s: How long a terminal task nobody fetched is kept.
        rate_limit: Requests per second allowed per identity (token bucket); None = no limit.
        rate_burst: Bucket size; None = ten seconds' worth of ``rate_limit`` (the reference
            documents "20 requests per 10 s").
        max_request_bytes: Largest accepted request body; bigger ones get 413.
        sweep_interval_s: How often expired leases are looked for.
        purge_interval_s: How often expired tasks are deleted.
        max_answer_bytes: Bytes of results (or claimed payloads) in one answer; the ids left
            out are asked for again.
        max_body_bytes_in_flight: Request body bytes being received at once, by everyone.
        max_client_body_bytes_in_flight: The same, by one identity.
        header_timeout_s: A connection must deliver a complete request head within this long
            (from its opening, or from the end of its previous answer).
        body_timeout_s: A request body must arrive within this long once its head did.
        max_connections: Open connections at once (also kept below the file limit).
        max_client_connections: Open connections of one client address.
    """

    state_dir: Path = field(default_factory=state_dir_mod.default_state_dir)
    lease_s: float = 30.0
    result_retention_s: float = 3600.0
    unretrieved_ttl_s: float = UNRETRIEVED_TTL_S
    rate_limit: float | None = None
    rate_burst: float | None = None
    max_request_bytes: int = MAX_REQUEST_BYTES
    sweep_interval_s: float = 1.0
    purge_interval_s: float = 60.0
    max_answer_bytes: int = MAX_ANSWER_BYTES
    max_body_bytes_in_flight: int = MAX_BODY_BYTES_IN_FLIGHT
    max_client_body_bytes_in_flight: int = MAX_CLIENT_BODY_BYTES_IN_FLIGHT
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1024
    max_client_connections: int = 256

    def __post_init__(self) -> None:
        self.state_dir = Path(os.fspath(self.state_dir))
        if self.lease_s <= 0:
            raise ValueError("lease_s must be positive")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive (or None for no limit)")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ValueError("rate_burst must be at least 1 (or None for 10 s of rate_limit)")
        for name in ("header_timeout_s", "body_timeout_s", "max_answer_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if min(self.max_connections, self.max_client_connections) < 1:
            raise ValueError("connection limits must be at least 1")
