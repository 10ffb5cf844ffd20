"""Which task results a Client deserializes, given that loading one may run its producer's code.

A result is serialized by the endpoint that ran the task, and loading a dill (or pickle, or
source) result runs whatever code that endpoint put in it: a crafted result pickle from
someone else's public endpoint runs in *your* process when you call ``future.result()``. So:

- a result in a format that only describes data (``JSONData``, header ``11``) is read from any
  endpoint;
- any other format is read only from an endpoint the caller owns, or from any endpoint when the
  Client was built with ``trust_foreign_results=True`` (a loud opt-in: it logs a warning);
- otherwise the task's outcome is an :class:`~globus_compute.errors.UntrustedResult` naming the
  endpoint and both ways out (JSON results via ``result_serializers``, or the opt-in).

Which endpoint ran a task: the one this Client submitted it to (remembered from the submit
answer until the task's outcome is final), else the task document's ``details.endpoint_id``.
The embedded service sets that field itself from the endpoint that reported the result; the
hosted service relays what the endpoint said, so for tasks submitted from elsewhere (another
process, ``reload_tasks``) against the hosted service, a foreign endpoint could claim to be one
of yours. That is a documented limit.

Ownership is one ``GET /v2/endpoints`` (the caller's own endpoints) at the first result that
needs it, repeated only when a result names an endpoint not seen yet; each answer is kept for
the Client's life (an endpoint id never changes hands: the embedded service retires deleted
ids to their owner).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from globus_compute.errors import UntrustedResult
from globus_compute.protocol.ids import canonical_uuid
from globus_compute.serialize import JSONData
from globus_compute.serialize.base import IDENTIFIER_LENGTH, strategy_for_header

log = logging.getLogger(__name__)

__all__ = ["SAFE_RESULT_STRATEGIES", "ResultTrust"]

#: Strategies whose deserialization runs no code of the producer's.
SAFE_RESULT_STRATEGIES = frozenset({JSONData})

#: Submitted tasks whose endpoint is remembered at most (oldest forgotten first; a forgotten
#: task falls back to its document's ``details.endpoint_id``).
MAX_REMEMBERED_TASKS = 1_000_000


class ResultTrust:
    """Decides, per result, whether deserializing it is safe; shared by a Client's threads.

    Args:
        list_owned: Returns the ids of the caller's own endpoints (one request).
        trust_foreign: Deserialize every format from every endpoint (the opt-in).
    """

    def __init__(self, list_owned: Callable[[], Iterable[str]], trust_foreign: bool = False):
        self.trust_foreign = trust_foreign
        self._list_owned = list_owned
        self._lock = threading.Lock()
        self._submitted: dict[str, str] = {}
        self._owned: set[str] = set()
        self._foreign: set[str] = set()
        if trust_foreign:
            log.warning(
                "trust_foreign_results=True: results from endpoints you do not own will be "
                "unpickled, which lets their owners run code in this process"
            )

    def record_submission(self, endpoint_id: str, task_ids: Iterable[str]) -> None:
        """Remember that this Client sent ``task_ids`` to ``endpoint_id``."""
        with self._lock:
            for task_id in task_ids:
                self._submitted[task_id] = endpoint_id
            while len(self._submitted) > MAX_REMEMBERED_TASKS:
                del self._submitted[next(iter(self._submitted))]

    def forget(self, task_id: str) -> None:
        """The task's outcome is final; its endpoint need not be remembered any longer."""
        with self._lock:
            self._submitted.pop(task_id, None)

    def check(self, task_id: str, payload: str, details: Any) -> None:
        """Return if ``payload`` (the task's result) may be deserialized here.

        Raises:
            UntrustedResult: It is in a format that runs code when loaded, and comes from an
                endpoint the caller does not own (or that cannot be told).
            Exception: Whatever ``list_owned`` raises (a failed request), so that the caller
                retries rather than calling the result untrusted.
        """
        strategy = strategy_for_header(payload[:IDENTIFIER_LENGTH])
        if self.trust_foreign or strategy is None or type(strategy) in SAFE_RESULT_STRATEGIES:
            return  # an unknown header fails in the deserializer, with its own message
        with self._lock:
            endpoint = self._submitted.get(task_id)
        if endpoint is None and isinstance(details, dict):
            endpoint = canonical_uuid(details.get("endpoint_id"))
        if endpoint is not None and self._is_owned(endpoint):
            return
        who = f"endpoint {endpoint}" if endpoint else "an endpoint this Client cannot identify"
        raise UntrustedResult(
            f"The result of task {task_id} was not deserialized: it is serialized with "
            f"{type(strategy).__name__}, and loading it would run code chosen by the owner of "
            f"{who}, which you do not own. Ask for JSON results "
            "(Executor(result_serializers=[JSONData()]) or Client.create_batch("
            "result_serializers=...)), or, if you trust that endpoint's owner with this "
            "process, use Client(trust_foreign_results=True)."
        )

    def _is_owned(self, endpoint_id: str) -> bool:
        with self._lock:
            if endpoint_id in self._owned:
                return True
            if endpoint_id in self._foreign:
                return False
        owned = {canonical_uuid(e) for e in self._list_owned()}  # the request, outside the lock
        with self._lock:
            self._owned.update(e for e in owned if e is not None)
            if endpoint_id in self._owned:
                return True
            self._foreign.add(endpoint_id)
            return False
