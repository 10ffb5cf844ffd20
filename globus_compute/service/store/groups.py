"""Groups of identities: a function shared with a group runs for each of its members."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from globus_compute.service.records import User
from globus_compute.service.store.database import Database
from globus_compute.service.store.identities import IdentityStore

log = logging.getLogger(__name__)


class GroupStore:
    """The ``groups`` and ``group_members`` tables.

    Args:
        database: The service database.
        identities: Where members are found (and created when unknown).
    """

    def __init__(self, database: Database, identities: IdentityStore) -> None:
        self._database = database
        self._identities = identities

    def create_group(self, name: str, members: Iterable[str] = ()) -> str:
        """Create a group of the named users (creating missing users) and return its id."""
        group_id = str(uuid.uuid4())
        with self._database.transaction() as db:
            db.execute(
                "INSERT INTO groups (id, name, created) VALUES (?,?,?)",
                (group_id, name, time.time()),
            )
        for member in members:
            self.add_group_member(group_id, member)
        return group_id

    def add_group_member(self, group_id: str, user_name: str) -> None:
        """Add ``user_name`` (created if unknown) to the group ``group_id``.

        Raises:
            KeyError: There is no group ``group_id``.
        """
        if self._identities.get_user(user_name) is None:
            self._identities.ensure_user(user_name)
        user = self._identities.get_user(user_name)
        assert user is not None
        with self._database.transaction() as db:
            if db.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)).fetchone() is None:
                raise KeyError(f"unknown group {group_id}")
            db.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?,?)",
                (group_id, user.id),
            )

    def user_groups(self, user: User) -> set[str]:
        """The ids of the groups ``user`` is a member of."""
        rows = self._database.connection.execute(
            "SELECT group_id FROM group_members WHERE user_id = ?", (user.id,)
        )
        return {r[0] for r in rows}
