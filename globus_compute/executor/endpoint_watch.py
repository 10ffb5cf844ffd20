"""Telling the user when work waits on an offline endpoint.

A task sent to an endpoint whose agent is not running waits: the service keeps it until an agent
claims it. That is correct, and silent. :class:`EndpointWatch` makes the wait visible. The
Executor's result poller holds one and calls :meth:`EndpointWatch.check` after each poll with
the endpoints its pending tasks wait on, and those whose tasks just finished. The first time an
endpoint is seen offline a warning is logged, once per offline spell::

    waiting for endpoint 2f5b...; it has been offline since 2026-12-01 12:03:07: its tasks
    start once its agent runs

and :meth:`EndpointWatch.waiting_on` answers the same for ``Executor.progress().waiting_on``.
When the endpoint is back online an INFO line says so and the notice is armed again.

What it costs: at most one ``get_endpoint_status`` request per endpoint per ``check_every_s``,
plus one when a task of an endpoint seen offline finishes (its agent is back, most likely: the
re-check says so at once, even if no other work waits there). With a request budget (the hosted
service's 20 requests per 10 s, shared with submits and polls), a status request is only made
when it takes nothing from them: no turn is waiting and the bucket is at least half full, and
then only one per check; the others stay due for a later check. Status requests are never
retried here: a failed one leaves what was known.

"Offline since" is the ``last_heartbeat`` of the status document (the embedded service sends
the time of the agent's last heartbeat or of its goodbye); without it (the hosted service) it is
when this watch first saw the endpoint offline.

The watch needs only ``client.get_endpoint_status``; a client without it (an ``ExecutorClient``
need not have it) is never asked, and nothing is reported.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from globus_compute.client.request_budget import SPARE_FRACTION, RequestBudget

__all__ = ["CHECK_EVERY_S", "EndpointWatch", "describe_wait"]

log = logging.getLogger(__name__)

#: How often one endpoint's status is asked for while work waits on it, by default.
CHECK_EVERY_S = 30.0


def describe_wait(endpoint_id: str, since: float) -> str:
    """``waiting for endpoint <id>; it has been offline since <local time>``."""
    when = datetime.datetime.fromtimestamp(since).isoformat(sep=" ", timespec="seconds")
    return f"waiting for endpoint {endpoint_id}; it has been offline since {when}"


class EndpointWatch:
    """Which endpoints pending work waits on are offline, and since when.

    Args:
        client: Anything with ``get_endpoint_status(endpoint_id) -> dict`` (a ``Client``);
            without that method the watch asks nothing.
        check_every_s: Least time between two status requests for one endpoint.
        budget: The client's request budget, if any (see the module docstring).
        clock: Monotonic seconds, for pacing (injectable for tests).
        wall_clock: Unix seconds, for "offline since" when the service does not say.
    """

    def __init__(
        self,
        client: Any,
        *,
        check_every_s: float = CHECK_EVERY_S,
        budget: RequestBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._get_status: Callable[[str], Any] | None = getattr(client, "get_endpoint_status", None)
        self.check_every_s = check_every_s
        self._budget = budget
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._checked_at: dict[str, float] = {}
        self._offline: dict[str, float] = {}
        self.requests = 0  # status requests made (tests and curious users)

    def check(self, waiting: Iterable[str], finished: Iterable[str] = ()) -> dict[str, float]:
        """Ask about the endpoints that are due; return every offline one, with since.

        Args:
            waiting: The endpoints pending work waits on. Endpoints not given any more are
                forgotten (after a last look, if ``finished`` names them).
            finished: Endpoints whose tasks finished since the last check; one seen offline is
                asked about again at once.
        """
        if self._get_status is None:
            return {}
        wanted = set(waiting)
        now = self._clock()
        with self._lock:
            revived = [e for e in set(finished) if e in self._offline]
            due = revived + [
                e
                for e in wanted
                if e not in revived
                and now - self._checked_at.get(e, float("-inf")) >= self.check_every_s
            ]
        for endpoint_id in due:
            if not self._budget_allows():
                break
            with self._lock:
                self._checked_at[endpoint_id] = now
            self._update(endpoint_id)
            if self._budget is not None:
                break  # one per check: the budget is shared with submits and polls
        with self._lock:
            for gone in (set(self._checked_at) | set(self._offline)) - wanted:
                self._checked_at.pop(gone, None)
                self._offline.pop(gone, None)
        return self.waiting_on()

    def waiting_on(self) -> dict[str, float]:
        """Offline endpoints that work waits on -> since when (unix seconds)."""
        with self._lock:
            return dict(self._offline)

    def describe(self) -> list[str]:
        """One sentence per offline endpoint that work waits on."""
        return [describe_wait(e, since) for e, since in sorted(self.waiting_on().items())]

    def _budget_allows(self) -> bool:
        """Whether a status request now takes nothing from submits and polls."""
        budget = self._budget
        if budget is None:
            return True
        return budget.waiting == 0 and budget.level() >= budget.rate.burst * SPARE_FRACTION

    def _update(self, endpoint_id: str) -> None:
        assert self._get_status is not None
        self.requests += 1
        try:
            status = self._get_status(endpoint_id)
        except Exception as exc:
            log.debug("could not ask for the status of endpoint %s: %r", endpoint_id, exc)
            return
        if not isinstance(status, dict):
            log.debug("endpoint %s: a status that is not a JSON object: %r", endpoint_id, status)
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
            log.info("endpoint %s is back online", endpoint_id)
        elif since is not None and not was_offline:
            log.warning(
                "%s: its tasks start once its agent runs", describe_wait(endpoint_id, since)
            )
