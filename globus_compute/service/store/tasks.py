"""Tasks: submit, claim, results, status documents, failing an endpoint's tasks, and purging.

Every hot path is set-based: a submit of N tasks is one ``executemany``, a claim is one
``SELECT`` and one ``UPDATE``, N results are one ``executemany``, a status query of N ids is one
``SELECT`` over ``json_each``. Payloads, results and tracebacks are strings stored and relayed
verbatim; nothing here unpickles user data. Leases of claimed tasks are ``leases.py``'s.

Answers are bounded in bytes: a status query or a claim reads rows one at a time and stops once
the next one would not fit ``max_bytes`` (a first row always fits, so every answer makes
progress); the rest is left for the next request. A purge deletes in bounded slices, so the
service can answer other requests between them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from globus_compute.protocol.agent import ClaimedTask, TaskResult
from globus_compute.protocol.results import completion_time, endpoint_lost_text
from globus_compute.protocol.states import TERMINAL_STATES, TaskState, sql_list
from globus_compute.protocol.task_buffer import function_buffer, task_buffer
from globus_compute.service.store.database import Database, StorageFull, storage_error

log = logging.getLogger(__name__)

#: The states as SQL literals and values, from the one enum (never spelled out in a query).
RUNNING_SQL = sql_list((TaskState.RUNNING,))
TERMINAL_SQL = sql_list(TERMINAL_STATES)
WAITING = TaskState.WAITING_FOR_EP.value
FAILED = TaskState.FAILED.value
_SUCCESS = TaskState.SUCCESS.value
_TERMINAL_VALUES = frozenset(state.value for state in TERMINAL_STATES)
_UNFINISHED_SQL = sql_list(tuple(s for s in TaskState if s not in TERMINAL_STATES))


#: Rows one purge slice deletes: a few milliseconds of work between other requests.
PURGE_SLICE_ROWS = 500


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, kept exact
        return json.dumps(value)


class DocumentPage(NamedTuple):
    """Task documents read for one answer.

    Attributes:
        docs: The documents, by task id.
        deferred: Visible requested ids left for the next answer: this one is full.
        text_bytes: The bytes of results and tracebacks in ``docs``.
        unread: Requested ids not looked at yet: the slice ended (see ``slice_bytes``).
    """

    docs: dict[str, dict[str, Any]]
    deferred: list[str]
    text_bytes: int = 0
    unread: list[str] = []


class PurgeCutoffs(NamedTuple):
    """What a purge deletes: results fetched before ``retrieved``, terminal tasks completed
    before ``completed``, and unfinished tasks created before ``created`` (unix times)."""

    retrieved: float
    completed: float
    created: float

    @classmethod
    def at(cls, now: float, retention_s: float, unretrieved_ttl_s: float) -> PurgeCutoffs:
        return cls(now - retention_s, now - unretrieved_ttl_s, now - unretrieved_ttl_s)


class TaskStore:
    """The ``tasks`` and ``task_groups`` tables.

    Args:
        database: The service database.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def submit_tasks(
        self,
        owner_id: int,
        endpoint_id: str,
        task_group_id: str | None,
        tasks: Sequence[tuple[str, str]],
        *,
        result_serializers: list[str] | None = None,
        resource_specification: dict | None = None,
        user_endpoint_config: dict | None = None,
    ) -> tuple[str, list[str]]:
        """Durably queue ``(function_id, payload)`` pairs for an endpoint.

        Returns:
            ``(task_group_id, task_ids)`` with task ids in the order of ``tasks``.

        Raises:
            PermissionError: ``task_group_id`` belongs to another identity.
        """
        now = time.time()
        serializers = _json_or_none(result_serializers)
        spec = _json_or_none(resource_specification)
        uec = _json_or_none(user_endpoint_config)
        task_ids = [str(uuid.uuid4()) for _ in tasks]
        with self._database.transaction() as db:
            if task_group_id is None:
                task_group_id = str(uuid.uuid4())
                db.execute(
                    "INSERT INTO task_groups (id, owner, created) VALUES (?,?,?)",
                    (task_group_id, owner_id, now),
                )
            else:
                row = db.execute(
                    "SELECT owner FROM task_groups WHERE id = ?", (task_group_id,)
                ).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO task_groups (id, owner, created) VALUES (?,?,?)",
                        (task_group_id, owner_id, now),
                    )
                elif row[0] != owner_id:
                    raise PermissionError(f"task group {task_group_id} belongs to another identity")
            db.executemany(
                "INSERT INTO tasks (id, owner, task_group, endpoint, function, payload, "
                "result_serializers, resource_specification, user_endpoint_config, status, "
                "created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        tid,
                        owner_id,
                        task_group_id,
                        endpoint_id,
                        fid,
                        payload,
                        serializers,
                        spec,
                        uec,
                        WAITING,
                        now,
                    )
                    for tid, (fid, payload) in zip(task_ids, tasks, strict=True)
                ],
            )
        return task_group_id, task_ids

    def task_documents(
        self, owner_id: int, task_ids: Sequence[str], *, mark_retrieved: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Reference task documents of the visible tasks among ``task_ids`` (canonical ids).

        Tasks of other identities and unknown ids are simply absent. Terminal documents handed
        out are stamped as retrieved, which starts their retention clock.
        """
        return self.document_page(owner_id, task_ids, mark_retrieved=mark_retrieved).docs

    def document_page(
        self,
        owner_id: int,
        task_ids: Sequence[str],
        max_bytes: int | None = None,
        *,
        used: int = 0,
        slice_bytes: int | None = None,
        mark_retrieved: bool = True,
    ) -> DocumentPage:
        """Like :meth:`task_documents`, but at most ``max_bytes`` of results and tracebacks.

        Rows are read one at a time, so the results left out are never loaded. Only the
        documents handed out are stamped as retrieved.

        Args:
            used: Bytes the answer already holds (from earlier slices); while it holds none,
                one document always fits.
            slice_bytes: Stop once this many bytes were read, leaving the ids not looked at
                as ``unread``, so that a caller can let other work run before it goes on.
        """
        rows = self._database.connection.execute(
            "SELECT id, status, result, exception, completion_t, details FROM tasks "
            "WHERE owner = ? AND id IN (SELECT value FROM json_each(?))",
            (owner_id, json.dumps(list(task_ids))),
        )
        docs: dict[str, dict[str, Any]] = {}
        delivered: list[str] = []
        size = 0
        full = sliced = False
        for tid, status, result, exception, completion_t, details in rows:
            doc: dict[str, Any] = {"task_id": tid, "status": status}
            if status in _TERMINAL_VALUES:
                text = result if status == _SUCCESS else exception
                n = len(text or "") + len(details or "")
                if max_bytes is not None and used + size and used + size + n > max_bytes:
                    full = True
                    break
                size += n
                delivered.append(tid)
                if status == _SUCCESS:
                    doc["result"] = result
                else:
                    doc["exception"] = exception
                doc["completion_t"] = completion_t
                if details:
                    doc["details"] = orjson.loads(details)
            docs[tid] = doc
            if slice_bytes is not None and size >= slice_bytes:
                sliced = True  # before the next row is loaded
                break
        rows.close()
        rest = [t for t in task_ids if t not in docs] if full or sliced else []
        if delivered and mark_retrieved:
            self._mark_retrieved(delivered)
        if sliced:
            return DocumentPage(docs, [], size, rest)
        return DocumentPage(docs, self._visible(owner_id, rest) if full else [], size)

    def _mark_retrieved(self, task_ids: list[str]) -> None:
        """Start the retention clock of results handed out; on a full disk, hand them out
        anyway (they are then kept until the unretrieved TTL instead)."""
        try:
            with self._database.transaction() as db:
                # "+": look the ids up by id; the purge's index on retrieved would have SQLite
                # walk every task not yet retrieved instead.
                db.execute(
                    "UPDATE tasks SET retrieved = ? WHERE +retrieved IS NULL "
                    "AND id IN (SELECT value FROM json_each(?))",
                    (time.time(), json.dumps(task_ids)),
                )
        except sqlite3.OperationalError as exc:
            if not isinstance(storage_error(exc), StorageFull):
                raise
            log.warning("Disk full: %d result(s) handed out, retention not started", len(task_ids))

    def _visible(self, owner_id: int, task_ids: Sequence[str]) -> list[str]:
        """Which of ``task_ids`` are ``owner_id``'s, in their order (reads no results)."""
        found = {
            r[0]
            for r in self._database.connection.execute(
                "SELECT id FROM tasks WHERE owner = ? AND id IN (SELECT value FROM json_each(?))",
                (owner_id, json.dumps(list(task_ids))),
            )
        }
        return [t for t in task_ids if t in found]

    def task_group(self, owner_id: int, task_group_id: str) -> list[tuple[str, float]] | None:
        """``(task_id, created)`` of a task group, or None if not visible to ``owner_id``."""
        db = self._database.connection
        row = db.execute("SELECT owner FROM task_groups WHERE id = ?", (task_group_id,)).fetchone()
        if row is None or row[0] != owner_id:
            return None
        return db.execute(
            "SELECT id, created FROM tasks WHERE task_group = ? ORDER BY rowid", (task_group_id,)
        ).fetchall()

    def claim_tasks(
        self, endpoint_id: str, max_tasks: int, lease_s: float, max_bytes: int | None = None
    ) -> list[ClaimedTask]:
        """Lease up to ``max_tasks`` waiting tasks of an endpoint, oldest first.

        Args:
            max_bytes: Stop before the payloads (and settings) would pass this many bytes; the
                first task is always taken.
        """
        now = time.time()
        with self._database.transaction() as db:
            cursor = db.execute(
                "SELECT rowid, id, function, payload, result_serializers, "
                "resource_specification, user_endpoint_config FROM tasks "
                "WHERE endpoint = ? AND status = ? ORDER BY rowid LIMIT ?",
                (endpoint_id, WAITING, max_tasks),
            )
            picked: list[tuple] = []
            size = 0
            for row in cursor:
                n = len(row[3]) + len(row[5] or "") + len(row[6] or "")
                if max_bytes is not None and picked and size + n > max_bytes:
                    break
                picked.append(row)
                size += n
            cursor.close()
            if not picked:
                return []
            attempts = dict(
                db.execute(
                    f"UPDATE tasks SET status = {RUNNING_SQL}, lease_owner = endpoint, "
                    "lease_expiry = ?, attempts = attempts + 1 "
                    "WHERE rowid IN (SELECT value FROM json_each(?)) RETURNING rowid, attempts",
                    (now + lease_s, json.dumps([r[0] for r in picked])),
                ).fetchall()
            )
            functions = {
                fid: function_buffer(name, code, bool(serialized))
                for fid, name, code, serialized in db.execute(
                    "SELECT id, name, code, serialized FROM functions "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(list({r[2] for r in picked})),),
                )
            }
        return [
            {
                "task_id": tid,
                "function_id": fid,
                "task_buffer": task_buffer(functions.get(fid, ""), payload),
                "result_serializers": json.loads(ser) if ser else None,
                "resource_specification": json.loads(spec) if spec else None,
                "user_endpoint_config": json.loads(uec) if uec else None,
                "attempt": attempts[rowid],
            }
            for rowid, tid, fid, payload, ser, spec, uec in picked
        ]

    def store_results(self, endpoint_id: str, results: Sequence[TaskResult]) -> int:
        """Record terminal results of an endpoint's tasks; returns how many were new.

        A result for a task that is already terminal, unknown, or queued for another endpoint
        is ignored, which makes re-sending a batch harmless.
        """
        now = time.time()
        rows = [
            (
                r["status"],
                r.get("result"),
                r.get("exception"),
                r["completion_t"],
                _json_or_none(r.get("details")),
                now,
                r["task_id"],
                endpoint_id,
            )
            for r in results
        ]
        with self._database.transaction() as db:
            cur = db.executemany(
                "UPDATE tasks SET status=?, result=?, exception=?, completion_t=?, details=?, "
                "completed=?, lease_owner=NULL, lease_expiry=NULL WHERE id=? AND endpoint=? "
                f"AND status NOT IN ({TERMINAL_SQL})",
                rows,
            )
            return max(cur.rowcount, 0)

    def fail_unfinished(self, endpoint_id: str) -> list[str]:
        """Fail every unfinished task of a deleted endpoint with ``EndpointLost`` text.

        Returns:
            The ids of the failed tasks.
        """
        now = time.time()
        with self._database.transaction() as db:
            failed = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM tasks WHERE endpoint = ? AND status NOT IN ({TERMINAL_SQL})",
                    (endpoint_id,),
                )
            ]
            db.executemany(
                "UPDATE tasks SET status = ?, exception = ?, completion_t = ?, completed = ?, "
                "lease_owner = NULL, lease_expiry = NULL WHERE id = ?",
                [
                    (
                        FAILED,
                        endpoint_lost_text(tid, endpoint_id, "deleted"),
                        completion_time(now),
                        now,
                        tid,
                    )
                    for tid in failed
                ],
            )
        return failed

    def purge_tasks(self, retention_s: float, unretrieved_ttl_s: float) -> int:
        """Delete results fetched more than ``retention_s`` ago and abandoned old tasks.

        All at once, slice after slice; the service's sweep calls the slices itself, with other
        requests in between (``actions/sweep.py``).
        """
        cutoffs = PurgeCutoffs.at(time.time(), retention_s, unretrieved_ttl_s)
        purged = 0
        while (n := self.purge_slice(cutoffs)) > 0:
            purged += n
        while self.purge_empty_groups(cutoffs.created) > 0:
            pass
        if purged:
            self._database.reclaim_space()
        return purged

    def purge_slice(self, cutoffs: PurgeCutoffs, limit: int = PURGE_SLICE_ROWS) -> int:
        """Delete at most ``limit`` expired tasks; return how many were deleted.

        Each condition has its own index (``retrieved``, ``completed``, and ``status`` for
        unfinished tasks), so a slice costs about its own rows, never a scan of the table. Only
        terminal tasks are ever retrieved or completed; the unary ``+`` keeps SQLite from
        picking the status index for those two.
        """
        purged = 0
        with self._database.transaction() as db:
            for where, cutoff in (
                (f"+status IN ({TERMINAL_SQL}) AND retrieved < ?", cutoffs.retrieved),
                (f"+status IN ({TERMINAL_SQL}) AND completed < ?", cutoffs.completed),
                (f"status IN ({_UNFINISHED_SQL}) AND created < ?", cutoffs.created),
            ):
                if purged < limit:
                    purged += db.execute(
                        "DELETE FROM tasks WHERE rowid IN "
                        f"(SELECT rowid FROM tasks WHERE {where} LIMIT ?)",
                        (cutoff, limit - purged),
                    ).rowcount
        if purged:
            log.debug("Purged %d expired task(s)", purged)
        return purged

    def purge_empty_groups(self, created_before: float, limit: int = PURGE_SLICE_ROWS) -> int:
        """Delete at most ``limit`` task groups older than ``created_before`` with no tasks left."""
        with self._database.transaction() as db:
            return db.execute(
                "DELETE FROM task_groups WHERE rowid IN (SELECT rowid FROM task_groups g "
                "WHERE g.created < ? AND NOT EXISTS "
                "(SELECT 1 FROM tasks t WHERE t.task_group = g.id) LIMIT ?)",
                (created_before, limit),
            ).rowcount
