"""Task storage: submit, claim, results, status documents, lease expiry and purging.

Every hot path is set-based: a submit of N tasks is one ``executemany``, a claim is one
``UPDATE ... RETURNING``, N results are one ``executemany``, a status query of N ids is one
``SELECT`` over ``json_each``. Payloads, results and tracebacks are strings stored and relayed
verbatim; nothing here unpickles user data.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson

from globus_compute.protocol.agent import ClaimedTask, TaskResult
from globus_compute.serialize.packing import pack_buffers

log = logging.getLogger(__name__)

PENDING_STATUS = "waiting-for-ep"
TERMINAL_STATUSES = ("success", "failed")

_LOST_TEXT = {
    "expired": (
        "globus_compute.errors.EndpointLost: task {task} was lost after {attempts} attempt(s): "
        "the endpoint {endpoint} stopped heartbeating, so its lease on the task expired.\n"
    ),
    "restarted": (
        "globus_compute.errors.EndpointLost: task {task} was lost after {attempts} attempt(s): "
        "the endpoint {endpoint} was restarted while running it (the previous agent process "
        "stopped heartbeating).\n"
    ),
}


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def executable_code(name: str, code: str, serialized: bool) -> str:
    """The function buffer an endpoint unpacks: the stored code, or raw source made one.

    ``register_source_code`` (SDK 4.19) sends plain source with ``serialized: false``; the
    endpoint expects a packed, serialized function, so the source is wrapped as the reference
    ``PureSourceTextInspect`` string (``st\\n<name>:<source>``). This is text, never executed
    here.
    """
    if serialized:
        return code
    return pack_buffers([f"st\n{name}:{code}"])


class TaskStoreMixin:
    """Task operations of :class:`~globus_compute.service.store.Store`."""

    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise TypeError("mixed into Store, which defines transaction()")

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
        with self.transaction() as db:
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
                        PENDING_STATUS,
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
        rows = self.db.execute(
            "SELECT id, status, result, exception, completion_t, details FROM tasks "
            "WHERE owner = ? AND id IN (SELECT value FROM json_each(?))",
            (owner_id, json.dumps(list(task_ids))),
        ).fetchall()
        docs: dict[str, dict[str, Any]] = {}
        delivered: list[str] = []
        for tid, status, result, exception, completion_t, details in rows:
            doc: dict[str, Any] = {"task_id": tid, "status": status}
            if status in TERMINAL_STATUSES:
                delivered.append(tid)
                if status == "success":
                    doc["result"] = result
                else:
                    doc["exception"] = exception
                doc["completion_t"] = completion_t
                if details:
                    doc["details"] = orjson.loads(details)
            docs[tid] = doc
        if delivered and mark_retrieved:
            with self.transaction() as db:
                db.execute(
                    "UPDATE tasks SET retrieved = ? WHERE retrieved IS NULL "
                    "AND id IN (SELECT value FROM json_each(?))",
                    (time.time(), json.dumps(delivered)),
                )
        return docs

    def task_group(self, owner_id: int, task_group_id: str) -> list[tuple[str, float]] | None:
        """``(task_id, created)`` of a task group, or None if not visible to ``owner_id``."""
        row = self.db.execute(
            "SELECT owner FROM task_groups WHERE id = ?", (task_group_id,)
        ).fetchone()
        if row is None or row[0] != owner_id:
            return None
        return self.db.execute(
            "SELECT id, created FROM tasks WHERE task_group = ? ORDER BY rowid", (task_group_id,)
        ).fetchall()

    def claim_tasks(self, endpoint_id: str, max_tasks: int, lease_s: float) -> list[ClaimedTask]:
        """Lease up to ``max_tasks`` waiting tasks of an endpoint, oldest first."""
        now = time.time()
        with self.transaction() as db:
            rows = db.execute(
                "UPDATE tasks SET status = 'running', lease_owner = endpoint, lease_expiry = ?, "
                "attempts = attempts + 1 WHERE rowid IN (SELECT rowid FROM tasks "
                "WHERE endpoint = ? AND status = ? ORDER BY rowid LIMIT ?) "
                "RETURNING rowid, id, function, payload, result_serializers, "
                "resource_specification, user_endpoint_config, attempts",
                (now + lease_s, endpoint_id, PENDING_STATUS, max_tasks),
            ).fetchall()
            if not rows:
                return []
            codes = {
                fid: executable_code(name, code, bool(serialized))
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
                "task_buffer": codes.get(fid, "") + payload,
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
        with self.transaction() as db:
            cur = db.executemany(
                "UPDATE tasks SET status=?, result=?, exception=?, completion_t=?, details=?, "
                "completed=?, lease_owner=NULL, lease_expiry=NULL WHERE id=? AND endpoint=? "
                "AND status NOT IN ('success', 'failed')",
                rows,
            )
            return max(cur.rowcount, 0)

    def expire_leases(self, lease_s: float) -> tuple[list[str], dict[str, list[str]]]:
        """Release every expired lease: re-queue or fail those tasks.

        A heartbeat renews the lease of every task its agent holds. So a lease that expires
        while its endpoint still heartbeats (within ``lease_s``) belongs to a claim whose answer
        never reached the agent (the service died mid-answer, say): that task never ran and is
        re-queued without counting an attempt. A lease that expires because its endpoint went
        silent is a lost endpoint: re-queued or failed per its retry setting.

        Returns:
            ``(failed_task_ids, requeued_task_ids_by_endpoint)``.
        """
        now = time.time()
        with self.transaction() as db:
            undelivered: dict[str, list[str]] = {}
            for tid, ep in db.execute(
                "UPDATE tasks SET status = ?, lease_owner = NULL, lease_expiry = NULL, "
                "attempts = attempts - 1 WHERE status = 'running' AND lease_expiry < ? AND "
                "endpoint IN (SELECT id FROM endpoints WHERE last_heartbeat > ?) "
                "RETURNING id, endpoint",
                (PENDING_STATUS, now, now - lease_s),
            ):
                undelivered.setdefault(ep, []).append(tid)
            failed, requeued = self._release_leases(db, "lease_expiry < ?", (now,), "expired")
        for ep, tids in undelivered.items():
            log.warning("%d claimed task(s) never reached endpoint %s; re-queued", len(tids), ep)
            requeued.setdefault(ep, []).extend(tids)
        return failed, requeued

    def _release_leases(
        self, db: sqlite3.Connection, where: str, params: tuple, why: str
    ) -> tuple[list[str], dict[str, list[str]]]:
        """Re-queue running tasks matching ``where`` that may be retried; fail the others.

        A task may run ``1 + max_retries_on_system_failure`` times (the endpoint's setting).
        """
        requeued: dict[str, list[str]] = {}
        for tid, ep in db.execute(
            "UPDATE tasks SET status = ?, lease_owner = NULL, lease_expiry = NULL "
            f"WHERE status = 'running' AND {where} AND attempts < 1 + COALESCE("
            "(SELECT max_retries FROM endpoints e WHERE e.id = tasks.endpoint), 0) "
            "RETURNING id, endpoint",
            (PENDING_STATUS, *params),
        ):
            requeued.setdefault(ep, []).append(tid)
        now = time.time()
        lost = db.execute(
            f"SELECT id, endpoint, attempts FROM tasks WHERE status = 'running' AND {where}",
            params,
        ).fetchall()
        if lost:
            db.executemany(
                "UPDATE tasks SET status = 'failed', exception = ?, completion_t = ?, "
                "completed = ?, lease_owner = NULL, lease_expiry = NULL WHERE id = ?",
                [
                    (
                        _LOST_TEXT[why].format(task=tid, attempts=attempts, endpoint=ep),
                        repr(now),
                        now,
                        tid,
                    )
                    for tid, ep, attempts in lost
                ],
            )
            log.warning("%d task(s) failed: endpoint lease %s", len(lost), why)
        if requeued:
            log.info("Re-queued %d task(s) after lease %s", sum(map(len, requeued.values())), why)
        return [t[0] for t in lost], requeued

    def purge_tasks(self, retention_s: float, unretrieved_ttl_s: float) -> int:
        """Delete results fetched more than ``retention_s`` ago and abandoned old tasks."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "DELETE FROM tasks WHERE status IN ('success', 'failed') AND "
                "((retrieved IS NOT NULL AND retrieved < ?) OR completed < ?)",
                (now - retention_s, now - unretrieved_ttl_s),
            )
            purged = cur.rowcount
            cur = db.execute(
                "DELETE FROM tasks WHERE status NOT IN ('success', 'failed') AND created < ?",
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
            # executescript steps the pragma to the end; execute() would free just one page.
            self.db.executescript("PRAGMA incremental_vacuum;")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return purged
