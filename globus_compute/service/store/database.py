"""The service's SQLite database: its schema, its one connection, its thread, and transactions.

One database file per state dir, in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives a crash of the service process (even ``kill -9``), and commits do not wait on fsync.

One connection serves every request in turn, on one dedicated thread (``thread.py``): the event
loop hands it whole service functions with :meth:`Database.call` and keeps serving while SQLite
works (the sqlite3 module releases the GIL inside SQLite). One thread keeps SQLite's connection
affinity and makes the requests' transactions strictly one after another; bulk work (purge
slices) waits for the requests queued meanwhile.

Every request is one transaction. A store method that writes opens one; a service function that
must change several concepts at once (re-registering an endpoint releases the tasks it held)
opens one around its store calls, and theirs join it.

Storage failures reach callers as :class:`StorageError`: :class:`StorageFull` when the disk is
full (nothing was written; retrying after space returns succeeds), :class:`StorageLost` when the
database file was deleted or replaced under the running service. The service then stops
answering as if durable: the open file would vanish at exit, and a new one would hold none of
the tasks and identities clients know about, so it is never silently recreated.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.store.thread import DatabaseThread

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
CREATE INDEX IF NOT EXISTS tasks_retrieved ON tasks (retrieved);
"""

T = TypeVar("T")

#: Bytes the write-ahead log is truncated to after a checkpoint resets it.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

#: Pages given back to the file system per step of :meth:`Database.reclaim_space_step`.
VACUUM_STEP_PAGES = 512


class StorageError(Exception):
    """The database cannot do what was asked; ``str()`` says why, for the caller to read."""


class StorageFull(StorageError):
    """The disk (or file system quota) is full: the transaction was rolled back."""


class StorageLost(StorageError):
    """The database file is gone or replaced, or unreadable: nothing is durable any more."""


def _file_identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


#: SQLite's primary result codes (fixed by SQLite; the ``sqlite3`` module names them only from
#: Python 3.11 on): a full disk, and a database file that cannot be used any more.
_SQLITE_FULL = 13
_SQLITE_FILE_FAILED = frozenset({8, 10, 11, 14, 26})  # READONLY IOERR CORRUPT CANTOPEN NOTADB


def storage_error(exc: sqlite3.Error) -> StorageError | None:
    """The storage error an SQLite error means, or None for a plain bug (a bad query)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # Python 3.10: only the message tells
        full = "database or disk is full" in str(exc)
        failed = "disk I/O error" in str(exc) or "readonly" in str(exc)
    else:
        full = code & 0xFF == _SQLITE_FULL
        failed = code & 0xFF in _SQLITE_FILE_FAILED
    if full:
        return StorageFull(f"the service's disk is full ({exc}); retry when space is freed")
    if failed:
        return StorageLost(f"the service's database failed: {exc}")
    return None


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
    # A reset write-ahead log is cut back to this size, so one big transaction (a purge) does
    # not leave a big file behind.
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    conn.executescript(SCHEMA)
    return conn


class Database:
    """The one connection to a service database, its thread, and its transactions.

    Args:
        path: The database file (created, private to its owner, if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = not path.exists()
        self.connection: sqlite3.Connection = connect(path)
        self._identity = _file_identity(path)
        #: Why the database is no longer durable, once it is not (see :meth:`check_file`).
        self.lost: str | None = None
        self._thread = DatabaseThread()

    def close(self) -> None:
        self._thread.close()
        self.connection.close()

    async def call(self, fn: Callable[..., T], *args: Any, bulk: bool = False) -> T:
        """Run ``fn(*args)`` on the database thread and return what it returns.

        Args:
            bulk: Work that may wait (a purge slice): it runs only when no request's call is
                queued (``thread.py``).

        Raises:
            StorageError: The database is lost, or SQLite reported a full disk or a failed file.
        """
        if self.lost is not None:
            raise StorageLost(self.lost)
        return await self._thread.call(functools.partial(self._run, fn, *args), bulk=bulk)

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            translated = storage_error(exc)
            if translated is None:
                raise
            if isinstance(translated, StorageLost):
                self._lose(str(translated))
            raise translated from exc

    def check_file(self) -> None:
        """Make sure the database file is still the one that was opened.

        Raises:
            StorageLost: It was deleted, or replaced by another file (another inode).
        """
        if self.lost is not None:
            raise StorageLost(self.lost)
        try:
            same = _file_identity(self.path) == self._identity
        except FileNotFoundError:
            self._lose(f"the database file {self.path} was deleted while the service ran")
        else:
            if not same:
                self._lose(f"the database file {self.path} was replaced while the service ran")
        if self.lost is not None:
            raise StorageLost(self.lost)

    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            log.error(
                "%s: nothing accepted from now on would be durable, so every request is refused "
                "(503). Restore the file or restart the service on a state dir you trust.",
                reason,
            )

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
        self.check_file()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) may or may not have rolled back already; a
            # transaction left open would be joined by the next request's.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def reclaim_space_step(self, pages: int = VACUUM_STEP_PAGES) -> bool:
        """Give up to ``pages`` freed pages back to the file system; True if more are left."""
        conn = self.connection
        before = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if not before:
            return False
        # executescript steps the pragma to the end; execute() would free just one page.
        conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        after = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return 0 < after < before  # no progress: not an incremental-vacuum database

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file as far as readers allow.

        Passive: it never waits for a reader of another process; ``journal_size_limit`` then
        truncates the log once it is reset.
        """
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def reclaim_space(self, max_steps: int = 100_000) -> None:
        """Give every freed page back to the file system, then checkpoint the write-ahead log."""
        for _ in range(max_steps):
            if not self.reclaim_space_step():
                break
        self.checkpoint()
