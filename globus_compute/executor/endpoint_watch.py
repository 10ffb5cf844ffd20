"""Telling the user when work waits on an offline endpoint.

A task sent to an endpoint whose agent is not running waits: the service keeps it until an agent
claims it. That is correct, and silent. :class:`EndpointWatch` makes the wait visible. Whoever
holds pending tasks (the Executor's poller, each round) calls :meth:`EndpointWatch.check` with
the endpoints they wait on; each is asked about at most every ``check_every_s`` seconds. The
first time one is seen offline a warning is logged, once per offline spell::

    waiting for endpoint 2f5b...; it has been offline since 2026-12-01 12:03:07

and :meth:`EndpointWatch.waiting_on` / :meth:`EndpointWatch.describe` answer the same for
``Executor.progress()`` or a future. When the endpoint is back online an INFO line says so and
the notice is armed again.

"Offline since" is the ``last_heartbeat`` of the status document (the embedded service sends
the time of the agent's last heartbeat or of its goodbye); without it (the hosted service) it is
when this watch first saw the endpoint offline.

This module is self-contained on purpose: it needs only ``client.get_endpoint_status``, so the
Executor (or any caller) can adopt it without changes here.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["EndpointWatch"]

log = logging.getLogger(__name__)

#: How often one endpoint's status is asked for while work waits on it, by default.
CHECK_EVERY_S = 30.0


class EndpointWatch:
    """Which endpoints pending work waits on are offline, and since when.

    Args:
        client: Anything with ``get_endpoint_status(endpoint_id) -> dict`` (a ``Client``).
        check_every_s: Least time between two status requests for one endpoint.
        clock: Monotonic seconds, for pacing (injectable for tests).
        wall_clock: Unix seconds, for "offline since" when the service does not say.
    """

    def __init__(
        self,
        client: Any,
        *,
        check_every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.check_every_s = check_every_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._checked_at: dict[str, float] = {}
        self._offline: dict[str, float] = {}

    def check(self, endpoint_ids: Iterable[str]) -> dict[str, float]:
        """Ask about the given endpoints that are due; return every offline one, with since.

        Endpoints not given any more (no work waits on them) are forgotten. A failed status
        request leaves what was known.
        """
        wanted = set(endpoint_ids)
        now = self._clock()
        with self._lock:
            for gone in set(self._checked_at) - wanted:
                self._checked_at.pop(gone, None)
                self._offline.pop(gone, None)
            due = [
                e
                for e in wanted
                if now - self._checked_at.get(e, float("-inf")) >= self.check_every_s
            ]
            for endpoint_id in due:
                self._checked_at[endpoint_id] = now
        for endpoint_id in due:
            self._update(endpoint_id)
        return self.waiting_on()

    def waiting_on(self) -> dict[str, float]:
        """Offline endpoints that work waits on -> since when (unix seconds)."""
        with self._lock:
            return dict(self._offline)

    def describe(self) -> list[str]:
        """One sentence per offline endpoint that work waits on."""
        return [self.describe_one(e, since) for e, since in sorted(self.waiting_on().items())]

    @staticmethod
    def describe_one(endpoint_id: str, since: float) -> str:
        when = datetime.datetime.fromtimestamp(since).isoformat(sep=" ", timespec="seconds")
        return f"waiting for endpoint {endpoint_id}; it has been offline since {when}"

    def _update(self, endpoint_id: str) -> None:
        try:
            status = self._client.get_endpoint_status(endpoint_id)
        except Exception as exc:
            log.debug("could not ask for the status of endpoint %s: %s", endpoint_id, exc)
            return
        online = status.get("status") == "online"
        with self._lock:
            was_offline = endpoint_id in self._offline
            if online:
                self._offline.pop(endpoint_id, None)
            elif not was_offline:
                since = status.get("last_heartbeat")
                if not isinstance(since, (int, float)) or isinstance(since, bool):
                    since = self._wall_clock()
                self._offline[endpoint_id] = float(since)
            since = self._offline.get(endpoint_id)
        if online and was_offline:
            log.info("endpoint %s is online again", endpoint_id)
        elif since is not None and not was_offline:
            log.warning(
                "%s: its tasks start once its agent runs", self.describe_one(endpoint_id, since)
            )
