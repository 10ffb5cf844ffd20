"""Registered endpoints: who owns them, what they allow, and what their agents last reported.

The same owner and name always map to the same endpoint id, so an agent restarted under its old
name finds its endpoint (and its queued tasks) again. Registering an existing endpoint updates
only what the registration gives: the owner's ``public``, ``allowed_functions`` and
``display_name`` survive an agent's registration, which sends none of them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from globus_compute.service.records import EndpointRecord, User
from globus_compute.service.store.database import Database

log = logging.getLogger(__name__)

_ENDPOINT_COLUMNS = (
    "e.id, e.owner, u.identity_id, e.name, e.display_name, e.metadata, e.public, e.allowed, "
    "e.last_heartbeat, e.status, e.stop"
)


class NameConflict(Exception):
    """Another endpoint of the same owner already has the requested name."""


def _endpoint_from_row(row: tuple) -> EndpointRecord:
    return EndpointRecord(
        id=row[0],
        owner=row[1],
        owner_identity=row[2],
        name=row[3],
        display_name=row[4],
        metadata=json.loads(row[5]),
        public=bool(row[6]),
        allowed_functions=json.loads(row[7]) if row[7] is not None else None,
        last_heartbeat=row[8],
        status=json.loads(row[9]) if row[9] else None,
        stop=bool(row[10]),
    )


class EndpointStore:
    """The ``endpoints`` table.

    Args:
        database: The service database.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def register_endpoint(
        self,
        owner: User,
        name: str,
        *,
        endpoint_id: str | None = None,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool | None = None,
        allowed_functions: list[str] | None = None,
        max_retries: int | None = None,
    ) -> tuple[str, bool]:
        """Create an endpoint, or update the settings a registration gives.

        Every keyword left None keeps what is stored (a new endpoint gets the defaults: no
        display name, empty metadata, private, unrestricted, no retries).

        Args:
            endpoint_id: The id to register under (``PUT``); by default the id of ``owner``'s
                endpoint called ``name``, or a new one.
            max_retries: How many times a task whose endpoint was lost is re-queued.

        Returns:
            ``(endpoint_id, existed)``: whether the endpoint was registered before.

        Raises:
            NameConflict: ``endpoint_id`` is given but another endpoint of this owner has ``name``.
            PermissionError: ``endpoint_id`` belongs to another identity.
        """
        given: dict[str, Any] = {"name": name}
        if display_name is not None:
            given["display_name"] = display_name
        if metadata is not None:
            given["metadata"] = json.dumps(metadata)
        if public is not None:
            given["public"] = int(public)
        if allowed_functions is not None:
            given["allowed"] = json.dumps(allowed_functions)
        if max_retries is not None:
            given["max_retries"] = max_retries
        with self._database.transaction() as db:
            by_name = db.execute(
                "SELECT id FROM endpoints WHERE owner = ? AND name = ?", (owner.id, name)
            ).fetchone()
            if endpoint_id is not None:
                by_id = db.execute(
                    "SELECT owner FROM endpoints WHERE id = ?", (endpoint_id,)
                ).fetchone()
                if by_id is not None and by_id[0] != owner.id:
                    raise PermissionError(f"endpoint {endpoint_id} belongs to another identity")
                if by_name is not None and by_name[0] != endpoint_id:
                    raise NameConflict(f"you already have endpoint {by_name[0]} named {name!r}")
                existed = by_id is not None
            else:
                endpoint_id = by_name[0] if by_name else str(uuid.uuid4())
                existed = by_name is not None
            if existed:
                # The column names come from the fixed keys above, never from the caller.
                assignments = ", ".join(f"{column} = ?" for column in given)
                db.execute(
                    f"UPDATE endpoints SET {assignments} WHERE id = ?",
                    (*given.values(), endpoint_id),
                )
            else:
                row = {"id": endpoint_id, "owner": owner.id, "created": time.time(), **given}
                db.execute(
                    f"INSERT INTO endpoints ({', '.join(row)}) VALUES "
                    f"({', '.join('?' for _ in row)})",
                    tuple(row.values()),
                )
        return endpoint_id, existed

    def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        """The endpoint ``endpoint_id``, or None."""
        row = self._database.connection.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints e JOIN users u ON u.id = e.owner "
            "WHERE e.id = ?",
            (endpoint_id,),
        ).fetchone()
        return _endpoint_from_row(row) if row else None

    def list_endpoints(self, user: User, include_public: bool) -> list[EndpointRecord]:
        """``user``'s endpoints, and every public one if ``include_public``, oldest first."""
        where = "e.owner = ? OR e.public = 1" if include_public else "e.owner = ?"
        rows = self._database.connection.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints e JOIN users u ON u.id = e.owner "
            f"WHERE {where} ORDER BY e.created",
            (user.id,),
        )
        return [_endpoint_from_row(r) for r in rows]

    def lock_endpoint(self, endpoint_id: str) -> None:
        """Raise the stop flag that the endpoint's next heartbeat returns."""
        with self._database.transaction() as db:
            db.execute("UPDATE endpoints SET stop = 1 WHERE id = ?", (endpoint_id,))

    def record_heartbeat(
        self, endpoint_id: str, status: dict[str, Any], *, starting: bool = False
    ) -> bool:
        """Mark the endpoint alive now with its agent's ``status``; return its stop flag.

        Args:
            starting: The first heartbeat of a new agent process, which also clears a stop flag
                left for the previous one.
        """
        clear_stop = ", stop = 0" if starting else ""
        with self._database.transaction() as db:
            # fetchall: a RETURNING statement must run to its end before the commit.
            rows = db.execute(
                f"UPDATE endpoints SET last_heartbeat = ?, status = ?{clear_stop} WHERE id = ? "
                "RETURNING stop",
                (time.time(), json.dumps(status), endpoint_id),
            ).fetchall()
        return bool(rows and rows[0][0])

    def record_goodbye(self, endpoint_id: str) -> None:
        """The agent stopped: the endpoint is offline from now (its last sign of life)."""
        with self._database.transaction() as db:
            db.execute(
                "UPDATE endpoints SET last_heartbeat = ?, status = NULL WHERE id = ?",
                (time.time(), endpoint_id),
            )

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Forget the endpoint (its tasks stay, for their submitters to read)."""
        with self._database.transaction() as db:
            db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
