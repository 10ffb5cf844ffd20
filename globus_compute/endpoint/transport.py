"""What the agent needs of the service (:class:`AgentTransport`), and its HTTP implementation.

The agent speaks to the service through four calls (register, heartbeat, claim, post results;
see :mod:`globus_compute.protocol.agent`) and never sees HTTP. It builds one transport per
thread through a :data:`TransportFactory`, handing each the event that ends its retries, so a
test can give it an in-memory service instead (``tests/support/fake_transport.py``).

Every transport keeps two promises the agent relies on:

- a refusal that retrying will not fix raises :class:`~globus_compute.errors.ServiceRefused`
  (with the HTTP status) at once;
- transient failures are retried until they succeed or the ``abort`` event is set, which
  raises :class:`AbortedError` (also while waiting between retries).

:class:`HTTPTransport` is the default. Each agent thread owns one, with one keep-alive
connection: ``http.client`` for ``http://`` and the service's Unix socket
(:class:`~globus_compute.keepalive.KeepAliveConnection`: a claim and a results post each cost
the agent a fraction of what they cost through ``requests``, and both are on a lone task's
path), a ``requests.Session`` for ``https://`` (certificates and proxies). Connection errors,
timeouts, HTTP 429 and 5xx are transient (the service is restarting or busy) and are retried on
the :data:`RETRY_BACKOFF` schedule. Because the agent
routes are idempotent (a result for a task already terminal is ignored), re-sending after a lost
response is always safe.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, cast

import requests

from globus_compute import keepalive
from globus_compute.errors import ServiceRefused
from globus_compute.protocol.agent import (
    AGENT_PREFIX,
    MAX_RETRY_PAUSE_S,
    ClaimResponse,
    HeartbeatResponse,
    ResultsResponse,
    TaskResult,
    WorkerStatus,
)
from globus_compute.retry import Backoff
from globus_compute.version import __version__

__all__ = ["AbortedError", "AgentTransport", "HTTPTransport", "TransportFactory"]

log = logging.getLogger(__name__)

#: Seconds allowed for a request on top of any long-poll wait it asks for.
REQUEST_TIMEOUT_S = 30.0
#: Between retries: starts small so a brief blip costs little, capped so a restarted service is
#: noticed within a few seconds (the cap is the protocol's: the service counts on it).
RETRY_BACKOFF = Backoff(first_s=0.05, max_s=MAX_RETRY_PAUSE_S)
#: Retries logged at DEBUG before they are worth a WARNING.
QUIET_RETRIES = 2


class AbortedError(Exception):
    """A call gave up because its ``abort`` event was set (the agent is stopping).

    Internal to the agent: it ends the loop of the thread that made the call.
    """


class AgentTransport(Protocol):
    """The agent's view of the service; one per agent thread.

    Raises (every call):
        ServiceRefused: The service refused the request for good (bad token, unknown endpoint,
            a body it will not take).
        AbortedError: The transport's abort event was set before the call succeeded.
    """

    def register(self, name: str, metadata: dict[str, Any], display_name: str | None = None) -> str:
        """Register the endpoint called ``name`` (or update its settings); returns its id."""
        ...

    def heartbeat(
        self,
        endpoint_id: str,
        status: WorkerStatus,
        held: list[str] | None = None,
        phase: str | None = None,
    ) -> HeartbeatResponse:
        """Report the engine's status and renew the leases of the ``held`` tasks.

        Args:
            phase: ``PHASE_STARTING`` (a new agent process) or ``PHASE_STOPPING`` (goodbye).
        """
        ...

    def claim(self, endpoint_id: str, max_tasks: int, wait_s: float) -> ClaimResponse:
        """Up to ``max_tasks`` tasks, waiting up to ``wait_s`` seconds for the first one."""
        ...

    def post_results(self, endpoint_id: str, results: list[TaskResult]) -> ResultsResponse:
        """Hand finished tasks back; idempotent."""
        ...

    def close(self) -> None:
        """Release connections; the transport is not used afterwards."""
        ...


#: Builds the transport of one agent thread from the event that ends its retries.
TransportFactory = Callable[[threading.Event], AgentTransport]


class _TransientHTTPError(Exception):
    """A retryable status (429, 5xx); only ever seen inside the retry loop."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(http_status, message)
        self.http_status = http_status


_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    OSError,
    http.client.HTTPException,
    _TransientHTTPError,
)


class _SessionConnection:
    """A ``requests.Session`` behind the :class:`~globus_compute.keepalive.KeepAliveConnection`
    interface, for ``https://`` services."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> keepalive.Reply:
        response = self.session.request(
            method, self.base_url + path, data=body, headers=headers, timeout=timeout
        )
        return keepalive.Reply(response.status_code, response.raw.headers, response.content)

    def close(self) -> None:
        self.session.close()


class HTTPTransport:
    """:class:`AgentTransport` over the service's HTTP routes.

    Args:
        service_url: Base URL, e.g. ``http://127.0.0.1:8000``, or the ``http+unix://`` URL of
            the embedded service's socket (``local_socket.py``).
        token: The endpoint owner's bearer token.
        abort: Set to stop retrying (and waiting between retries) at once.
        backoff: The schedule of waits between retries.
    """

    def __init__(
        self,
        service_url: str,
        token: str,
        abort: threading.Event,
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self.base_url = service_url.rstrip("/")
        self.abort = abort
        self.backoff = backoff
        self._connection: keepalive.KeepAliveConnection | _SessionConnection = (
            keepalive.KeepAliveConnection(self.base_url)
            if keepalive.supports(self.base_url)
            else _SessionConnection(self.base_url)
        )
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"globus-compute-endpoint/{__version__}",
            "Content-Type": "application/json",
        }

    def close(self) -> None:
        self._connection.close()

    def register(self, name: str, metadata: dict[str, Any], display_name: str | None = None) -> str:
        body: dict[str, Any] = {"endpoint_name": name, "metadata": metadata}
        if display_name:
            body["display_name"] = display_name
        reply = self._post("/v3/endpoints", body)
        return str(reply["endpoint_id"])

    def heartbeat(
        self,
        endpoint_id: str,
        status: WorkerStatus,
        held: list[str] | None = None,
        phase: str | None = None,
    ) -> HeartbeatResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/heartbeat"
        body: dict[str, Any] = {"status": status}
        if held is not None:
            body["held"] = held
        if phase is not None:
            body["phase"] = phase
        return cast(HeartbeatResponse, self._post(path, body))

    def claim(self, endpoint_id: str, max_tasks: int, wait_s: float) -> ClaimResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/claim"
        body = {"max_tasks": max_tasks, "wait_s": wait_s}
        return cast(ClaimResponse, self._post(path, body, timeout=wait_s + REQUEST_TIMEOUT_S))

    def post_results(self, endpoint_id: str, results: list[TaskResult]) -> ResultsResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/results"
        return cast(ResultsResponse, self._post(path, {"results": results}))

    def _post(
        self, path: str, body: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S
    ) -> dict[str, Any]:
        """POST with retries of transient failures.

        Raises:
            ServiceRefused: For a non-retryable HTTP status.
            AbortedError: If ``abort`` was set before the call succeeded.
        """
        retry = 0
        while True:
            if self.abort.is_set():
                raise AbortedError(f"POST {path} aborted")
            try:
                return self._post_once(path, body, timeout)
            except _TRANSIENT as exc:
                retry += 1
                level = logging.DEBUG if retry <= QUIET_RETRIES else logging.WARNING
                log.log(level, "service call failed (attempt %d), retrying: %s", retry, exc)
                if self.abort.wait(self.backoff.delay(retry)):
                    raise AbortedError(f"gave up on POST {path}: {exc}") from exc

    def _post_once(self, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        data = json.dumps(body, allow_nan=False).encode()
        reply = self._connection.request("POST", path, data, self._headers, timeout)
        status = reply.status
        if status == 429 or status >= 500:
            raise _TransientHTTPError(status, _text(reply.body))
        if status >= 400:
            raise ServiceRefused(status, _text(reply.body))
        return cast(dict[str, Any], json.loads(reply.body))


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")
