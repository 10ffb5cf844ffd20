"""Tasks: submit, claim, results, status documents, failing an endpoint's tasks, and purging.

Every hot path is set-based: a submit of N tasks is one ``executemany``, a claim is one
``UPDATE ... RETURNING``, N results are one ``executemany``, a status query of N ids is one
``SELECT`` over ``json_each``. Payloads, results and tracebacks are strings stored and relayed
verbatim; nothing here unpickles user data. Leases of claimed tasks are ``leases.py``'s.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from globus_compute.protocol.agent import ClaimedTask, TaskResult
from globus_compute.protocol.results import completion_time, endpoint_lost_text
from globus_compute.protocol.states import TERMINAL_STATES, TaskState, sql_list
from globus_compute.protocol.task_buffer import function_buffer, task_buffer
from globus_compute.service.store.database import Database

log = logging.getLogger(__name__)

#: The states as SQL literals and values, from the one enum (never spelled out in a query).
RUNNING_SQL = sql_list((TaskState.RUNNING,))
TERMINAL_SQL = sql_list(TERMINAL_STATES)
WAITING = TaskState.WAITING_FOR_EP.value
FAILED = TaskState.FAILED.value
_SUCCESS = TaskState.SUCCESS.value
_TERMINAL_VALUES = frozenset(state.value for state in TERMINAL_STATES)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


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
        rows = self._database.connection.execute(
            "SELECT id, status, result, exception, completion_t, details FROM tasks "
            "WHERE owner = ? AND id IN (SELECT value FROM json_each(?))",
            (owner_id, json.dumps(list(task_ids))),
        ).fetchall()
        docs: dict[str, dict[str, Any]] = {}
        delivered: list[str] = []
        for tid, status, result, exception, completion_t, details in rows:
            doc: dict[str, Any] = {"task_id": tid, "status": status}
            if status in _TERMINAL_VALUES:
                delivered.append(tid)
                if status == _SUCCESS:
                    doc["result"] = result
                else:
                    doc["exception"] = exception
                doc["completion_t"] = completion_t
                if details:
                    doc["details"] = orjson.loads(details)
            docs[tid] = doc
        if delivered and mark_retrieved:
            with self._database.transaction() as db:
                db.execute(
                    "UPDATE tasks SET retrieved = ? WHERE retrieved IS NULL "
                    "AND id IN (SELECT value FROM json_each(?))",
                    (time.time(), json.dumps(delivered)),
                )
        return docs

    def task_group(self, owner_id: int, task_group_id: str) -> list[tuple[str, float]] | None:
        """``(task_id, created)`` of a task group, or None if not visible to ``owner_id``."""
        db = self._database.connection
        row = db.execute("SELECT owner FROM task_groups WHERE id = ?", (task_group_id,)).fetchone()
        if row is None or row[0] != owner_id:
            return None
        return db.execute(
            "SELECT id, created FROM tasks WHERE task_group = ? ORDER BY rowid", (task_group_id,)
        ).fetchall()

    def claim_tasks(self, endpoint_id: str, max_tasks: int, lease_s: float) -> list[ClaimedTask]:
        """Lease up to ``max_tasks`` waiting tasks of an endpoint, oldest first."""
        now = time.time()
        with self._database.transaction() as db:
            rows = db.execute(
                f"UPDATE tasks SET status = {RUNNING_SQL}, lease_owner = endpoint, "
                "lease_expiry = ?, attempts = attempts + 1 WHERE rowid IN (SELECT rowid FROM tasks "
                "WHERE endpoint = ? AND status = ? ORDER BY rowid LIMIT ?) "
                "RETURNING rowid, id, function, payload, result_serializers, "
                "resource_specification, user_endpoint_config, attempts",
                (now + lease_s, endpoint_id, WAITING, max_tasks),
            ).fetchall()
            if not rows:
                return []
            functions = {
                fid: function_buffer(name, code, bool(serialized))
                for fid, name, code, serialized in db.execute(
                    "SELECT id, name, code, serialized FROM functions "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(list({r[2] for r in rows})),),
                )
            }
        rows.sort()
        return [
            {
                "task_id": tid,
                "function_id": fid,
                "task_buffer": task_buffer(functions.get(fid, ""), payload),
                "result_serializers": json.loads(ser) if ser else None,
                "resource_specification": json.loads(spec) if spec else None,
                "user_endpoint_config": json.loads(uec) if uec else None,
                "attempt": attempts,
            }
            for _, tid, fid, payload, ser, spec, uec, attempts in rows
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
        """Delete results fetched more than ``retention_s`` ago and abandoned old tasks."""
        now = time.time()
        with self._database.transaction() as db:
            cur = db.execute(
                f"DELETE FROM tasks WHERE status IN ({TERMINAL_SQL}) AND "
                "((retrieved IS NOT NULL AND retrieved < ?) OR completed < ?)",
                (now - retention_s, now - unretrieved_ttl_s),
            )
            purged = cur.rowcount
            cur = db.execute(
                f"DELETE FROM tasks WHERE status NOT IN ({TERMINAL_SQL}) AND created < ?",
                (now - unretrieved_ttl_s,),
            )
            purged += cur.rowcount
            db.execute(
                "DELETE FROM task_groups WHERE created < ? AND NOT EXISTS "
                "(SELECT 1 FROM tasks t WHERE t.task_group = task_groups.id)",
                (now - unretrieved_ttl_s,),
            )
        if purged:
            log.info("Purged %d expired task(s)", purged)
            self._database.reclaim_space()
        return purged
