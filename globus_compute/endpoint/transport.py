"""HTTP calls from the agent to the service, with retries that survive a service restart.

Each agent thread owns one :class:`ServiceAPI` (a ``requests.Session`` is not meant to be shared
between threads, and one keep-alive connection per thread avoids a TCP handshake per call).

Retry policy: connection errors, timeouts, HTTP 429 and 5xx are transient (the service is
restarting or busy) and are retried with capped exponential backoff until they succeed or the
caller's ``abort`` event is set. Anything else is the caller's problem and raises
:class:`ServiceError` at once. Because the agent routes are idempotent (a result for a task
already terminal is ignored), re-sending after a lost response is always safe.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

import requests
import tenacity

from globus_compute.protocol.agent import (
    AGENT_PREFIX,
    ClaimResponse,
    HeartbeatResponse,
    ResultsResponse,
    TaskResult,
    WorkerStatus,
)
from globus_compute.version import __version__

log = logging.getLogger(__name__)

#: Seconds allowed for a request on top of any long-poll wait it asks for.
REQUEST_TIMEOUT_S = 30.0
#: Backoff between retries: starts small so a brief blip costs little, capped so a restarted
#: service is noticed within a few seconds.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.05, 3.0


class ServiceError(Exception):
    """The service refused a request for a reason retrying will not fix.

    Args:
        http_status: The response status code.
        message: The response body (the service's JSON error document as text).
    """

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(http_status, message)
        self.http_status = http_status
        self.message = message

    def __str__(self) -> str:
        return f"HTTP {self.http_status}: {self.message[:500]}"


class _TransientHTTPError(Exception):
    """A retryable status (429, 5xx); only ever seen inside the retry loop."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(http_status, message)
        self.http_status = http_status


class AbortedError(Exception):
    """Retrying stopped because the caller's abort event was set."""


_TRANSIENT = (requests.ConnectionError, requests.Timeout, _TransientHTTPError)


class ServiceAPI:
    """The agent's view of the service: registration plus the private agent routes.

    Args:
        service_url: Base URL, e.g. ``http://127.0.0.1:8000``.
        token: The endpoint owner's bearer token.
        abort: Set to stop retrying (and waiting between retries) at once.
    """

    def __init__(self, service_url: str, token: str, abort: threading.Event) -> None:
        self.base_url = service_url.rstrip("/")
        self.abort = abort
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "User-Agent": f"globus-compute-endpoint/{__version__}",
            }
        )

    def close(self) -> None:
        self.session.close()

    def register(self, name: str, metadata: dict[str, Any], display_name: str | None = None) -> str:
        """Register (or re-register) the endpoint called ``name``; returns its id."""
        body: dict[str, Any] = {"endpoint_name": name, "metadata": metadata}
        if display_name:
            body["display_name"] = display_name
        reply = self._post("/v3/endpoints", body)
        return str(reply["endpoint_id"])

    def heartbeat(
        self, endpoint_id: str, status: WorkerStatus, held: list[str] | None = None
    ) -> HeartbeatResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/heartbeat"
        body: dict[str, Any] = {"status": status}
        if held is not None:
            body["held"] = held
        return cast(HeartbeatResponse, self._post(path, body))

    def claim(self, endpoint_id: str, max_tasks: int, wait_s: float) -> ClaimResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/claim"
        body = {"max_tasks": max_tasks, "wait_s": wait_s}
        return cast(ClaimResponse, self._post(path, body, timeout=wait_s + REQUEST_TIMEOUT_S))

    def post_results(self, endpoint_id: str, results: list[TaskResult]) -> ResultsResponse:
        path = f"{AGENT_PREFIX}/{endpoint_id}/results"
        return cast(ResultsResponse, self._post(path, {"results": results}))

    def _post(self, path: str, body: dict, timeout: float = REQUEST_TIMEOUT_S) -> dict:
        """POST with retries of transient failures.

        Raises:
            ServiceError: For a non-retryable HTTP status.
            AbortedError: If ``abort`` was set before the call succeeded.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_TRANSIENT),
            wait=tenacity.wait_exponential_jitter(initial=BACKOFF_FIRST_S, max=BACKOFF_MAX_S),
            stop=lambda _state: self.abort.is_set(),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._post_once, path, body, timeout)
        except _TRANSIENT as exc:
            raise AbortedError(f"gave up on POST {path}: {exc}") from exc

    def _post_once(self, path: str, body: dict, timeout: float) -> dict:
        if self.abort.is_set():
            raise AbortedError(f"POST {path} aborted")
        response = self.session.post(self.base_url + path, json=body, timeout=timeout)
        status = response.status_code
        if status == 429 or status >= 500:
            raise _TransientHTTPError(status, response.text)
        if status >= 400:
            raise ServiceError(status, response.text)
        return cast(dict, response.json())

    def _sleep(self, seconds: float) -> None:
        if self.abort.wait(seconds):
            raise AbortedError("aborted while waiting to retry")

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        level = logging.DEBUG if state.attempt_number < 3 else logging.WARNING
        log.log(level, "service call failed (attempt %d), retrying: %s", state.attempt_number, exc)
