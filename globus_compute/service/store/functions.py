"""Registered functions, stored verbatim: the service never unpickles a function's code.

Deleting a function hides it; tasks already queued to run it still get its code when claimed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from globus_compute.service.records import FunctionRecord, User
from globus_compute.service.store.database import Database

log = logging.getLogger(__name__)


class FunctionStore:
    """The ``functions`` table.

    Args:
        database: The service database.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

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
        with self._database.transaction() as db:
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
        row = self._database.connection.execute(
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
        """Live functions among ``function_ids``, by id, without code or metadata.

        One query for a whole submit, which needs only what the access rules look at.
        """
        rows = self._database.connection.execute(
            "SELECT id, owner, name, '', description, '{}', public, group_id FROM functions "
            "WHERE deleted = 0 AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(function_ids)),),
        )
        return {
            r[0]: FunctionRecord(r[0], r[1], r[2], r[3], r[4], {}, bool(r[6]), r[7]) for r in rows
        }

    def delete_function(self, function_id: str) -> None:
        """Hide a function; queued tasks that use it still get its code when claimed."""
        with self._database.transaction() as db:
            db.execute("UPDATE functions SET deleted = 1 WHERE id = ?", (function_id,))
