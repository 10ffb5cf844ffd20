"""Local identities and their bearer tokens.

Each identity has a name, an identity UUID (what clients see as an owner) and the hash of its
token; the token itself is written to ``state_dir/tokens/<name>.token`` (0600) and nowhere else.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.records import User
from globus_compute.service.store.database import Database
from globus_compute.service.tokens import hash_token, new_token

log = logging.getLogger(__name__)


class IdentityStore:
    """The ``users`` table.

    Args:
        database: The service database.
        state_dir: Directory of the token files.
    """

    def __init__(self, database: Database, state_dir: Path) -> None:
        self._database = database
        self._state_dir = state_dir

    def ensure_user(self, name: str) -> str:
        """Create identity ``name`` if needed and return its bearer token.

        The token lives in ``state_dir/tokens/<name>.token`` (0600); the database holds only its
        hash. If the user exists and its token file is readable, that token is returned; if the
        file was lost, a new token replaces the old one (the old one stops working).
        """
        path = state_dir_mod.token_path(self._state_dir, name)
        row = self._database.connection.execute(
            "SELECT token_hash FROM users WHERE name = ?", (name,)
        ).fetchone()
        if row is not None:
            token = state_dir_mod.read_token_file(path)
            if token is not None and hash_token(token) == row[0]:
                # Rewritten, so that a token file or dir left with wider modes is tightened.
                state_dir_mod.write_token_file(path, token)
                return token
        token = new_token()
        with self._database.transaction() as db:
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
        row = self._database.connection.execute(
            "SELECT id, name, identity_id FROM users WHERE token_hash = ?", (hash_token(token),)
        ).fetchone()
        return User(*row) if row else None

    def get_user(self, name: str) -> User | None:
        """The identity called ``name``, or None."""
        row = self._database.connection.execute(
            "SELECT id, name, identity_id FROM users WHERE name = ?", (name,)
        ).fetchone()
        return User(*row) if row else None
