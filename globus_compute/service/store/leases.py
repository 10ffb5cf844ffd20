"""Leases of claimed tasks: renewed by heartbeats, released when they expire or an agent
starts or stops.

A claimed task belongs to its endpoint until the result arrives. Each heartbeat renews the leases
of the tasks its agent says it holds. A lease released by the service ends one of two ways: the
task is queued again (it may run ``1 + max_retries_on_system_failure`` times, the endpoint's
setting), or it fails with ``EndpointLost`` text naming the cause. What was released is returned
as a :class:`~globus_compute.service.records.LeaseRelease`, so the caller wakes whoever waits.

The service's own downtime never counts against an endpoint: :meth:`LeaseStore.restart_clocks`
gives every lease a fresh term when the service starts, so the leases of an agent that stayed up
through the outage are renewed by its next heartbeat instead of expiring at once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence

from globus_compute.protocol.results import completion_time, endpoint_lost_text
from globus_compute.service.records import LeaseRelease
from globus_compute.service.store.database import Database
from globus_compute.service.store.tasks import FAILED, RUNNING_SQL, TERMINAL_SQL, WAITING

log = logging.getLogger(__name__)


class LeaseStore:
    """The lease columns of the ``tasks`` table.

    Args:
        database: The service database.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def renew_leases(
        self, endpoint_id: str, lease_s: float, held: Sequence[str] | None = None
    ) -> list[str]:
        """Extend by ``lease_s`` the leases of the tasks an endpoint's agent holds.

        Args:
            held: The ids of the tasks the agent holds (claimed, result not yet accepted). Only
                their leases are renewed, so a claim whose answer never reached the agent
                expires (see :meth:`expire_leases`). None renews every lease of the endpoint.

        Returns:
            The held ids the agent must drop: tasks already terminal (failed ``EndpointLost``
            while the agent was out of touch, say), unknown, or queued for another endpoint.
            A held task that was re-queued is not among them: it has not run again, so the
            agent may still run it and its result will count.
        """
        renew = f"UPDATE tasks SET lease_expiry = ? WHERE endpoint = ? AND status = {RUNNING_SQL}"
        expiry = time.time() + lease_s
        with self._database.transaction() as db:
            if held is None:
                db.execute(renew, (expiry, endpoint_id))
                return []
            if not held:
                return []
            held_json = json.dumps(list(held))
            db.execute(
                renew + " AND id IN (SELECT value FROM json_each(?))",
                (expiry, endpoint_id, held_json),
            )
            kept = {
                row[0]
                for row in db.execute(
                    "SELECT id FROM tasks WHERE endpoint = ? AND id IN "
                    f"(SELECT value FROM json_each(?)) AND status NOT IN ({TERMINAL_SQL})",
                    (endpoint_id, held_json),
                )
            }
        return [tid for tid in held if tid not in kept]

    def restart_clocks(self, lease_s: float) -> int:
        """Give every running task's lease at least ``lease_s`` more (the service just started).

        While the service was down no heartbeat could arrive, so an expired lease says nothing
        about its endpoint. Returns how many leases were extended.
        """
        with self._database.transaction() as db:
            cur = db.execute(
                f"UPDATE tasks SET lease_expiry = MAX(COALESCE(lease_expiry, 0), ?) "
                f"WHERE status = {RUNNING_SQL}",
                (time.time() + lease_s,),
            )
            return max(cur.rowcount, 0)

    def expire_leases(self, lease_s: float) -> LeaseRelease:
        """Release every expired lease: re-queue or fail those tasks.

        A heartbeat renews the lease of every task its agent holds. So a lease that expires
        while its endpoint still heartbeats (within ``lease_s``) belongs to a claim whose answer
        never reached the agent (the service died mid-answer, say): that task never ran and is
        re-queued without counting an attempt. A lease that expires because its endpoint went
        silent is a lost endpoint: re-queued or failed per its retry setting.
        """
        now = time.time()
        with self._database.transaction() as db:
            undelivered: dict[str, list[str]] = {}
            for tid, ep in db.execute(
                "UPDATE tasks SET status = ?, lease_owner = NULL, lease_expiry = NULL, "
                f"attempts = attempts - 1 WHERE status = {RUNNING_SQL} AND lease_expiry < ? AND "
                "endpoint IN (SELECT id FROM endpoints WHERE last_heartbeat > ?) "
                "RETURNING id, endpoint",
                (WAITING, now, now - lease_s),
            ):
                undelivered.setdefault(ep, []).append(tid)
            release = _release(db, "lease_expiry < ?", (now,), "expired")
        for ep, tids in undelivered.items():
            log.warning("%d claimed task(s) never reached endpoint %s; re-queued", len(tids), ep)
            release.requeued.setdefault(ep, []).extend(tids)
        return release

    def release_restarted(self, endpoint_id: str) -> LeaseRelease:
        """Release every lease of an endpoint whose new agent process just started.

        The tasks belonged to the previous process, which is gone.
        """
        with self._database.transaction() as db:
            return _release(db, "endpoint = ?", (endpoint_id,), "restarted")

    def release_stopped(self, endpoint_id: str, held: Sequence[str]) -> LeaseRelease:
        """Release the leases of the ``held`` tasks an agent gave up when it stopped."""
        if not held:
            return LeaseRelease([], {})
        with self._database.transaction() as db:
            return _release(
                db,
                "endpoint = ? AND id IN (SELECT value FROM json_each(?))",
                (endpoint_id, json.dumps(list(held))),
                "stopped",
            )


def _release(db: sqlite3.Connection, where: str, params: tuple, cause: str) -> LeaseRelease:
    """Re-queue running tasks matching ``where`` that may be retried; fail the others.

    Args:
        cause: Why the leases end, as :func:`~globus_compute.protocol.results.endpoint_lost_text`
            names it.
    """
    requeued: dict[str, list[str]] = {}
    for tid, ep in db.execute(
        "UPDATE tasks SET status = ?, lease_owner = NULL, lease_expiry = NULL "
        f"WHERE status = {RUNNING_SQL} AND {where} AND attempts < 1 + COALESCE("
        "(SELECT max_retries FROM endpoints e WHERE e.id = tasks.endpoint), 0) "
        "RETURNING id, endpoint",
        (WAITING, *params),
    ):
        requeued.setdefault(ep, []).append(tid)
    now = time.time()
    lost = db.execute(
        f"SELECT id, endpoint, attempts FROM tasks WHERE status = {RUNNING_SQL} AND {where}",
        params,
    ).fetchall()
    if lost:
        db.executemany(
            "UPDATE tasks SET status = ?, exception = ?, completion_t = ?, "
            "completed = ?, lease_owner = NULL, lease_expiry = NULL WHERE id = ?",
            [
                (
                    FAILED,
                    endpoint_lost_text(tid, ep, cause, attempts),
                    completion_time(now),
                    now,
                    tid,
                )
                for tid, ep, attempts in lost
            ],
        )
        log.warning("%d task(s) failed: endpoint lease %s", len(lost), cause)
    if requeued:
        log.info("Re-queued %d task(s) after lease %s", sum(map(len, requeued.values())), cause)
    return LeaseRelease([t[0] for t in lost], requeued)
