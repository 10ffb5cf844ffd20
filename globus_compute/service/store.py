"""Durable state of the service: identities, groups, functions and endpoints (tasks live in
``store_tasks.py``, mixed into the same :class:`Store`).

All methods are synchronous and short: the service calls them straight from its event loop, one
transaction per request, which on SQLite in WAL mode costs far less than a thread hop.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.identity import EndpointRecord, FunctionRecord, User, hash_token
from globus_compute.service.schema import connect
from globus_compute.service.store_tasks import TaskStoreMixin

log = logging.getLogger(__name__)

_ENDPOINT_COLUMNS = (
    "e.id, e.owner, u.identity_id, e.name, e.display_name, e.metadata, e.public, e.allowed, "
    "e.last_heartbeat, e.status, e.stop"
)


def new_token() -> str:
    """A fresh bearer token that never starts with "-".

    Tokens travel on command lines (``--token TOKEN``), where argparse takes a leading dash for
    an option: one token in 64 made ``LocalCompute`` fail to start its endpoint.
    """
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


class NameConflict(Exception):
    """Another endpoint of the same owner already has the requested name."""


#: Cap on ``max_retries_on_system_failure``; also keeps the value within SQLite's integers.
MAX_RETRIES = 1000


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


class Store(TaskStoreMixin):
    """The service's SQLite database.

    Args:
        state_dir: Directory of the database file and the token files.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.db: sqlite3.Connection = connect(state_dir_mod.database_path(self.state_dir))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the body raises."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- identities -------------------------------------------------------------------------

    def ensure_user(self, name: str) -> str:
        """Create identity ``name`` if needed and return its bearer token.

        The token lives in ``state_dir/tokens/<name>.token`` (0600); the database holds only its
        hash. If the user exists and its token file is readable, that token is returned; if the
        file was lost, a new token replaces the old one (the old one stops working).
        """
        path = state_dir_mod.token_path(self.state_dir, name)
        row = self.db.execute("SELECT token_hash FROM users WHERE name = ?", (name,)).fetchone()
        if row is not None:
            token = state_dir_mod.read_token_file(path)
            if token is not None and hash_token(token) == row[0]:
                return token
        token = new_token()
        with self.transaction() as db:
            if row is None:
                db.execute(
                    "INSERT INTO users (name, identity_id, token_hash, created) VALUES (?,?,?,?)",
                    (name, str(uuid.uuid4()), hash_token(token), time.time()),
                )
            else:
                db.execute(
                    "UPDATE users SET token_hash = ? WHERE name = ?", (hash_token(token), name)
                )
        state_dir_mod.write_token_file(path, token)
        log.info("Identity %r ready; token in %s", name, path)
        return token

    def user_for_token(self, token: str) -> User | None:
        """The identity holding ``token``, or None for an unknown token.

        Looked up in the database every time (an indexed read, a few microseconds), never cached:
        a token replaced by ``globus-compute-local token`` in another process must stop working
        in the running service at once.
        """
        row = self.db.execute(
            "SELECT id, name, identity_id FROM users WHERE token_hash = ?", (hash_token(token),)
        ).fetchone()
        return User(*row) if row else None

    def get_user(self, name: str) -> User | None:
        row = self.db.execute(
            "SELECT id, name, identity_id FROM users WHERE name = ?", (name,)
        ).fetchone()
        return User(*row) if row else None

    # -- groups -----------------------------------------------------------------------------

    def create_group(self, name: str, members: Iterable[str] = ()) -> str:
        """Create a group of the named users (creating missing users) and return its id."""
        group_id = str(uuid.uuid4())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO groups (id, name, created) VALUES (?,?,?)",
                (group_id, name, time.time()),
            )
        for member in members:
            self.add_group_member(group_id, member)
        return group_id

    def add_group_member(self, group_id: str, user_name: str) -> None:
        """Add ``user_name`` (created if unknown) to the group ``group_id``."""
        if self.get_user(user_name) is None:
            self.ensure_user(user_name)
        user = self.get_user(user_name)
        assert user is not None
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)).fetchone() is None:
                raise KeyError(f"unknown group {group_id}")
            db.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?,?)",
                (group_id, user.id),
            )

    def user_groups(self, user: User) -> set[str]:
        rows = self.db.execute("SELECT group_id FROM group_members WHERE user_id = ?", (user.id,))
        return {r[0] for r in rows}

    # -- functions --------------------------------------------------------------------------

    def register_function(
        self,
        owner: User,
        name: str,
        code: str,
        *,
        serialized: bool = True,
        description: str | None = None,
        meta: dict[str, Any] | None = None,
        public: bool = False,
        group_id: str | None = None,
    ) -> str:
        """Store a function verbatim (never unpickled) and return its new id."""
        function_id = str(uuid.uuid4())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO functions (id, owner, name, code, serialized, description, meta, "
                "public, group_id, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    function_id,
                    owner.id,
                    name,
                    code,
                    int(serialized),
                    description,
                    json.dumps(meta or {}),
                    int(public),
                    group_id,
                    time.time(),
                ),
            )
        return function_id

    def get_function(self, function_id: str) -> FunctionRecord | None:
        """The live (not deleted) function ``function_id``, or None."""
        row = self.db.execute(
            "SELECT id, owner, name, code, description, meta, public, group_id FROM functions "
            "WHERE id = ? AND deleted = 0",
            (function_id,),
        ).fetchone()
        if row is None:
            return None
        return FunctionRecord(
            id=row[0],
            owner=row[1],
            name=row[2],
            code=row[3],
            description=row[4],
            meta=json.loads(row[5]),
            public=bool(row[6]),
            group_id=row[7],
        )

    def get_functions(self, function_ids: Iterable[str]) -> dict[str, FunctionRecord]:
        """Live functions among ``function_ids``, by id (one query for a whole submit)."""
        rows = self.db.execute(
            "SELECT id, owner, name, '', description, '{}', public, group_id FROM functions "
            "WHERE deleted = 0 AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(function_ids)),),
        )
        return {
            r[0]: FunctionRecord(r[0], r[1], r[2], r[3], r[4], {}, bool(r[6]), r[7]) for r in rows
        }

    def delete_function(self, function_id: str) -> None:
        """Hide a function; queued tasks that use it still get its code when claimed."""
        with self.transaction() as db:
            db.execute("UPDATE functions SET deleted = 1 WHERE id = ?", (function_id,))

    # -- endpoints --------------------------------------------------------------------------

    def register_endpoint(
        self,
        owner: User,
        name: str,
        *,
        endpoint_id: str | None = None,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        allowed_functions: list[str] | None = None,
    ) -> tuple[str, list[str], dict[str, list[str]]]:
        """Create or re-register an endpoint.

        The same owner and name always map to the same endpoint id. Re-registration means a new
        agent process took over, so every task the previous process held is released at once.

        Returns:
            ``(endpoint_id, failed_task_ids, requeued_task_ids_by_endpoint)``.

        Raises:
            NameConflict: ``endpoint_id`` is given but another endpoint of this owner has ``name``.
            PermissionError: ``endpoint_id`` belongs to another identity.
        """
        metadata = metadata or {}
        max_retries = metadata.get("max_retries_on_system_failure", 0)
        if (
            not isinstance(max_retries, int)
            or isinstance(max_retries, bool)
            or not 0 <= max_retries <= MAX_RETRIES
        ):
            max_retries = 0
        allowed = json.dumps(allowed_functions) if allowed_functions is not None else None
        with self.transaction() as db:
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
                exists = by_id is not None
            else:
                endpoint_id = by_name[0] if by_name else str(uuid.uuid4())
                exists = by_name is not None
            if exists:
                db.execute(
                    "UPDATE endpoints SET name=?, display_name=?, metadata=?, public=?, allowed=?, "
                    "max_retries=?, stop=0 WHERE id=?",
                    (
                        name,
                        display_name,
                        json.dumps(metadata),
                        int(public),
                        allowed,
                        max_retries,
                        endpoint_id,
                    ),
                )
                failed, requeued = self._release_leases(
                    db, "endpoint = ?", (endpoint_id,), "restarted"
                )
            else:
                db.execute(
                    "INSERT INTO endpoints (id, owner, name, display_name, metadata, public, "
                    "allowed, max_retries, created) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        endpoint_id,
                        owner.id,
                        name,
                        display_name,
                        json.dumps(metadata),
                        int(public),
                        allowed,
                        max_retries,
                        time.time(),
                    ),
                )
                failed, requeued = [], {}
        return endpoint_id, failed, requeued

    def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        row = self.db.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints e JOIN users u ON u.id = e.owner "
            "WHERE e.id = ?",
            (endpoint_id,),
        ).fetchone()
        return _endpoint_from_row(row) if row else None

    def list_endpoints(self, user: User, include_public: bool) -> list[EndpointRecord]:
        where = "e.owner = ? OR e.public = 1" if include_public else "e.owner = ?"
        rows = self.db.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints e JOIN users u ON u.id = e.owner "
            f"WHERE {where} ORDER BY e.created",
            (user.id,),
        )
        return [_endpoint_from_row(r) for r in rows]

    def lock_endpoint(self, endpoint_id: str) -> None:
        """Raise the stop flag that the endpoint's next heartbeat returns."""
        with self.transaction() as db:
            db.execute("UPDATE endpoints SET stop = 1 WHERE id = ?", (endpoint_id,))

    def heartbeat(
        self,
        endpoint_id: str,
        status: dict[str, Any],
        lease_s: float,
        held: Sequence[str] | None = None,
    ) -> bool:
        """Mark the endpoint alive and renew the leases its agent holds; return its stop flag.

        Args:
            held: The ids of the tasks the agent holds (claimed, result not yet accepted). Only
                their leases are renewed, so a claim whose answer never reached the agent
                expires (see ``expire_leases``). None renews every lease of the endpoint.
        """
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE endpoints SET last_heartbeat = ?, status = ? WHERE id = ?",
                (now, json.dumps(status), endpoint_id),
            )
            renew = "UPDATE tasks SET lease_expiry = ? WHERE endpoint = ? AND status = 'running'"
            if held is None:
                db.execute(renew, (now + lease_s, endpoint_id))
            elif held:
                db.execute(
                    renew + " AND id IN (SELECT value FROM json_each(?))",
                    (now + lease_s, endpoint_id, json.dumps(list(held))),
                )
            row = db.execute("SELECT stop FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
        return bool(row and row[0])

    def delete_endpoint(self, endpoint_id: str) -> list[str]:
        """Delete an endpoint; its unfinished tasks fail. Returns the failed task ids."""
        now = time.time()
        text = (
            "globus_compute.errors.EndpointLost: endpoint "
            f"{endpoint_id} was deleted before this task finished\n"
        )
        with self.transaction() as db:
            failed = [
                r[0]
                for r in db.execute(
                    "UPDATE tasks SET status='failed', exception=?, completion_t=?, completed=?, "
                    "lease_owner=NULL, lease_expiry=NULL WHERE endpoint = ? "
                    "AND status NOT IN ('success', 'failed') RETURNING id",
                    (text, repr(now), now, endpoint_id),
                )
            ]
            db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
        return failed
