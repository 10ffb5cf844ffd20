"""The service's SQLite database: its schema, its one connection, and transactions.

One database file per state dir, in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives a crash of the service process (even ``kill -9``), and commits do not wait on fsync.
The service is one asyncio process, so one connection serves every request in turn.

Every request is one transaction. A store method that writes opens one; a service function that
must change several concepts at once (re-registering an endpoint releases the tasks it held)
opens one around its store calls, and theirs join it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from globus_compute import state_dir as state_dir_mod

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    identity_id TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    created     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS functions (
    id          TEXT PRIMARY KEY,
    owner       INTEGER NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    code        TEXT NOT NULL,
    serialized  INTEGER NOT NULL DEFAULT 1,
    description TEXT,
    meta        TEXT NOT NULL DEFAULT '{}',
    public      INTEGER NOT NULL DEFAULT 0,
    group_id    TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    id             TEXT PRIMARY KEY,
    owner          INTEGER NOT NULL REFERENCES users(id),
    name           TEXT NOT NULL,
    display_name   TEXT,
    metadata       TEXT NOT NULL DEFAULT '{}',
    public         INTEGER NOT NULL DEFAULT 0,
    allowed        TEXT,
    max_retries    INTEGER NOT NULL DEFAULT 0,
    last_heartbeat REAL,
    status         TEXT,
    stop           INTEGER NOT NULL DEFAULT 0,
    created        REAL NOT NULL,
    UNIQUE (owner, name)
);
CREATE TABLE IF NOT EXISTS retired_endpoints (
    id      TEXT PRIMARY KEY,
    owner   INTEGER NOT NULL REFERENCES users(id),
    retired REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS task_groups (
    id      TEXT PRIMARY KEY,
    owner   INTEGER NOT NULL REFERENCES users(id),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id                     TEXT PRIMARY KEY,
    owner                  INTEGER NOT NULL,
    task_group             TEXT NOT NULL,
    endpoint               TEXT NOT NULL,
    function               TEXT NOT NULL,
    payload                TEXT NOT NULL,
    result_serializers     TEXT,
    resource_specification TEXT,
    user_endpoint_config   TEXT,
    status                 TEXT NOT NULL,
    result                 TEXT,
    exception              TEXT,
    completion_t           TEXT,
    details                TEXT,
    lease_owner            TEXT,
    lease_expiry           REAL,
    attempts               INTEGER NOT NULL DEFAULT 0,
    created                REAL NOT NULL,
    completed              REAL,
    retrieved              REAL
);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (endpoint, status);
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (status, lease_expiry);
CREATE INDEX IF NOT EXISTS tasks_group ON tasks (task_group);
CREATE INDEX IF NOT EXISTS tasks_completed ON tasks (completed);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the service database at ``path``.

    ``isolation_level=None`` leaves transactions to the store, which opens exactly one per
    request with ``BEGIN IMMEDIATE``; ``check_same_thread=False`` lets a test or a shutdown hook
    touch the store from another thread while the event loop is idle.
    """
    # The database holds every payload and result: the state dir and the database are private
    # to their owner whatever the umask, also when they existed with wider modes (SQLite gives
    # new -wal and -shm files the database's mode; older ones are tightened here).
    state_dir_mod.make_private_dir(path.parent)
    for private in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if private == path or private.exists():
            os.close(state_dir_mod.open_private_file(private, os.O_RDWR))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Purged pages go back to the file system (``incremental_vacuum`` after each purge), so the
    # database stays bounded; the setting only takes effect on a new, empty database.
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn


class Database:
    """The one connection to a service database, and its transactions.

    Args:
        path: The database file (created, private to its owner, if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection: sqlite3.Connection = connect(path)

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the body raises.

        Inside a transaction that is already open, this joins it: the outermost one commits or
        rolls back everything, so several store calls of one service function are atomic.
        """
        conn = self.connection
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def reclaim_space(self) -> None:
        """Give freed pages back to the file system and truncate the write-ahead log."""
        # executescript steps the pragma to the end; execute() would free just one page.
        self.connection.executescript("PRAGMA incremental_vacuum;")
        self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
