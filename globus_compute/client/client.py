"""``Client``: the documented Globus Compute REST client, over globus-sdk's Compute clients.

Every REST call is made by ``globus_sdk.ComputeClientV2`` / ``ComputeClientV3`` (``rest``), so
what goes on the wire is what the reference ``globus-compute-sdk`` sends. This module decides
what to send and what the answers mean; ``task_table`` parses task documents and caches the
finished ones, ``auth`` picks credentials, ``environments`` picks the URL.

Every request goes through one seam, ``_request``: it waits for a turn in the identity's
request budget (``request_budget``), sends, and handles a 429 itself, draining the budget and
resending after ``Retry-After`` for as long as it takes (globus-sdk's five retries would give
up on a long rate limit and fail the call). It also logs in again once on an auth requirement.

Two properties of the service are explicit, not guessed at each call: ``request_budget`` (None
for the embedded service, which has no rate limit) and ``long_poll`` (whether the service
holds ``batch_status`` requests, which only our embedded service does). Both default from the
URL (loopback: the embedded service) and both can be set, so the hosted code paths can be
rehearsed against the embedded service (docs/guides/embedded.md, "Rehearsing the hosted
limits").

Threads: the Executor calls one Client from its submitter and poller threads at once, and a
long-polling ``get_batch_result(wait=...)`` must not hold up submissions, so there is no
per-Client request lock (the reference has one). That is safe because each globus-sdk request
builds its own prepared request and retry state, marks its transport current through a
``ContextVar``, and sends on a ``requests.Session`` whose urllib3 connection pool is
thread-safe; we never call the racy ``retry_config.tune()``. The Client's own mutable state,
the task cache and the endpoints already warned about, sits behind the task table's lock.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import globus_sdk
import orjson
from globus_sdk.gare import to_gares

from globus_compute import local_socket
from globus_compute.client import auth, environments, rest
from globus_compute.client.batch import Batch, user_runtime
from globus_compute.client.hardware_report import run_hardware_report
from globus_compute.client.hot_path import HotPath
from globus_compute.client.request_budget import (
    AUTO,
    RequestBudget,
    RequestRate,
    configured_rate,
    identity_key,
    is_rate_limited,
    pause,
    retry_after_s,
    shared_budget,
    spend_turn,
)
from globus_compute.client.result_trust import ResultTrust
from globus_compute.client.task_table import (
    DEFAULT_TASK_CACHE_SIZE,
    TaskEntry,
    TaskOutcome,
    TaskOutcomes,
    TaskTable,
)
from globus_compute.errors import InvalidServiceResponse, TaskPending
from globus_compute.protocol.ids import UuidLike, canonical_uuid, require_uuid
from globus_compute.serialize import ComputeSerializer, PureSourceTextInspect, pack_buffers
from globus_compute.version import REFERENCE_SDK_VERSION

#: Pause between polls of ``get_result(timeout=...)`` against a remote service: the hosted
#: service allows 20 requests per 10 s per client, shared with everything else.
REMOTE_RESULT_POLL_S = 2.0
#: Longest single long-poll asked of the embedded service (below the 60 s HTTP timeout).
MAX_LONG_POLL_S = 30.0

log = logging.getLogger(__name__)

__all__ = ["Client"]


class Client:
    """A Globus Compute REST client, wire-compatible with ``globus_compute_sdk.Client``.

    Args:
        environment: Service environment (``production``, ``local``, ...); defaults to
            ``$GLOBUS_SDK_ENVIRONMENT``, else production.
        local_compute_services: Shorthand for ``environment="local"``.
        do_version_check: Ask the service for its minimum SDK version now (one GET).
        code_serialization_strategy: Strategy for function code (default: dill, ``01``).
        data_serialization_strategy: Strategy for arguments (default: dill base64, ``00``).
        app: A ``globus_sdk.GlobusApp`` to log in with; mutually exclusive with ``authorizer``.
        authorizer: A globus-sdk authorizer, e.g. ``AccessTokenAuthorizer(token)``.
        base_url: Service URL; wins over the environment and ``$GLOBUS_SDK_SERVICE_URL_COMPUTE``.
        task_cache_size: Finished tasks remembered (default ``DEFAULT_TASK_CACHE_SIZE``).
        trust_foreign_results: Deserialize results in every format from every endpoint. By
            default (False) only JSON results are read from endpoints you do not own: loading
            a dill result runs code its endpoint's owner chose, in this process. Set it only
            for endpoints whose owners you trust with your account (see ``result_trust``).
        request_budget: Requests this Client's identity may send: a ``RequestRate``, a string
            like ``"20/10"`` (requests per seconds) or ``"none"``/None for no budget. The
            default ``"auto"`` reads ``$GLOBUS_COMPUTE_REQUEST_BUDGET``, else spends 19 per
            10 s against a remote service (the hosted limit is 20) and has no budget at a
            loopback URL. Shared by every Client of the same identity in this process.
        long_poll: Whether the service holds result polls until a result is ready (only our
            embedded service does). None: ``$GLOBUS_COMPUTE_LONG_POLL``, else True at a
            loopback URL.
        **kwargs: Arguments older reference versions took; ignored with a UserWarning.

    Attributes:
        request_budget: The identity's shared ``RequestBudget``, or None.
        long_poll: As given or defaulted.

    Raises:
        ValueError: ``app`` and ``authorizer`` together, only half of the client credentials,
            or a malformed ``request_budget``.
        LocalTokenMissing: Environment ``local`` with no app, authorizer or token file.
    """

    def __init__(
        self,
        environment: str | None = None,
        local_compute_services: bool = False,
        do_version_check: bool = True,
        *,
        code_serialization_strategy: Any = None,
        data_serialization_strategy: Any = None,
        app: globus_sdk.GlobusApp | None = None,
        authorizer: globus_sdk.authorizers.GlobusAuthorizer | None = None,
        base_url: str | None = None,
        task_cache_size: int = DEFAULT_TASK_CACHE_SIZE,
        trust_foreign_results: bool = False,
        request_budget: RequestRate | str | None = AUTO,
        long_poll: bool | None = None,
        **kwargs: Any,
    ) -> None:
        for name in kwargs:
            warnings.warn(f"The '{name}' argument is unrecognized and ignored.", stacklevel=2)
        env = environments.environment_name("local" if local_compute_services else environment)
        self.environment = env
        self.service_url = environments.service_url(env, base_url)
        self.app, self.authorizer = auth.resolve_credentials(env, app, authorizer)
        rate = configured_rate(request_budget, self.service_url)
        self.request_budget: RequestBudget | None = None
        if rate is not None:
            identity = identity_key(self.app, self.authorizer)
            self.request_budget = shared_budget(self.service_url, identity, rate)
        self.long_poll = (
            environments.long_poll_default(self.service_url) if long_poll is None else long_poll
        )
        self._compute_web_client = rest.ComputeWebClient(
            self.service_url, self.app, self.authorizer
        )
        # The embedded service's socket: the hot requests skip requests/urllib3 (hot_path.py).
        self._hot_v2: HotPath | None = None
        self._hot_v3: HotPath | None = None
        if local_socket.is_socket_url(self.service_url) and self.app is None:
            self._hot_v2 = HotPath(self._v2)
            self._hot_v3 = HotPath(self._v3)
        self.fx_serializer = ComputeSerializer(
            strategy_code=code_serialization_strategy, strategy_data=data_serialization_strategy
        )
        self._auth_client: globus_sdk.AuthClient | None = None
        self._trust = ResultTrust(self._own_endpoint_ids, trust_foreign_results)
        self._tasks = TaskTable(self.fx_serializer, task_cache_size, self._trust)
        if do_version_check:
            self.version_check()

    @property
    def web_service_address(self) -> str:
        """The service URL, under the reference SDK's name."""
        return self.service_url

    def __repr__(self) -> str:
        return f"Client(service_url={self.service_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP sessions; the Client is not usable afterwards."""
        self._compute_web_client.close()
        for hot in (self._hot_v2, self._hot_v3):
            if hot is not None:
                hot.close()

    # -- the request seam ---------------------------------------------------------------------

    def _request(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Make one REST call: wait for a turn in the budget, send, and resend after any 429.

        With a GlobusApp, an auth-requirement error logs in again, once. Other status errors
        and retries of connection errors and 502/503/504 are globus-sdk's business.

        Raises:
            RequestCancelled: A wait for a turn was called off (``request_budget.cancelled_by``).
        """
        logged_in = False
        while True:
            spend_turn(self.request_budget)
            try:
                return call(*args, **kwargs)
            except globus_sdk.GlobusAPIError as exc:
                if is_rate_limited(exc):
                    self._wait_out_rate_limit(exc)
                    continue
                if logged_in or not self._login_for(exc):
                    raise
                logged_in = True

    def _wait_out_rate_limit(self, exc: globus_sdk.GlobusAPIError) -> None:
        """A 429: drain the identity's budget (its next turn comes after ``Retry-After``)."""
        delay = retry_after_s(exc)
        budget = self.request_budget
        warn = budget.drain(delay) if budget is not None else False
        log.log(
            logging.WARNING if warn else logging.INFO,
            "Rate limited by the Compute service (HTTP 429, request %s); resending after %.1fs%s",
            exc.request_id,
            delay,
            f" (budget {budget.rate})" if budget is not None else "",
        )
        if budget is None:
            pause(delay)

    def _login_for(self, exc: globus_sdk.GlobusAPIError) -> bool:
        """Satisfy each Globus Auth requirement (GARE) in ``exc``; False if there is none."""
        gares = to_gares([exc]) if self.app is not None else []
        for gare in gares:
            params = gare.authorization_parameters
            if params.session_message is None:
                params.session_message = gare.extra.get("reason")
            self.app.login(auth_params=params)  # type: ignore[union-attr]
        return bool(gares)

    @property
    def _v2(self) -> globus_sdk.ComputeClientV2:
        return self._compute_web_client.v2

    @property
    def _v3(self) -> globus_sdk.ComputeClientV3:
        return self._compute_web_client.v3

    # -- service and auth ---------------------------------------------------------------------

    def version_check(self, endpoint_version: str | None = None) -> None:
        """Check the service's minimum versions against the reference SDK version we speak.

        Raises:
            VersionMismatch: The service requires a newer SDK (or endpoint).
        """
        data = self._request(self._v2.get_version, service="all").data or {}
        rest.require_version(
            REFERENCE_SDK_VERSION, data.get("min_sdk_version"), "globus-compute-sdk"
        )
        if endpoint_version is not None:
            minimum = data.get("min_ep_version") or data.get("min_endpoint_version")
            rest.require_version(endpoint_version, minimum, "globus-compute-endpoint")

    @property
    def auth_client(self) -> globus_sdk.AuthClient:
        """A Globus Auth client on this Client's credentials; deprecated, as in the reference.

        Built on first use (see ``auth.build_auth_client``); may be replaced by assignment.

        Raises:
            RuntimeError: Environment ``local`` without an app (Globus Auth has no ``local``).
        """
        warnings.warn(
            "The 'Client.auth_client' attribute is deprecated.", DeprecationWarning, stacklevel=2
        )
        if self._auth_client is None:
            self._auth_client = auth.build_auth_client(self.environment, self.app, self.authorizer)
        return self._auth_client

    @auth_client.setter
    def auth_client(self, value: globus_sdk.AuthClient) -> None:
        self._auth_client = value

    def logout(self) -> None:
        """Revoke and forget the app's stored tokens (an authorizer has none to forget)."""
        if self.app is None:
            log.warning("Logout is not supported with an authorizer (%r).", self.authorizer)
            return
        self.app.logout()

    # -- functions ----------------------------------------------------------------------------

    def register_function(
        self,
        function: Callable[..., Any],
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        group: UuidLike | None = None,
        ha_endpoint_id: UuidLike | None = None,
    ) -> str:
        """Serialize ``function`` and register it; returns the function id.

        ``description`` defaults to the docstring. ``metadata`` describes the serialized code,
        so it is computed here and cannot be given (``register_source_code`` accepts it).

        Raises:
            ValueError: ``metadata`` given, or ``ha_endpoint_id`` with ``public``/``group``.
            SerializationError: The function cannot be serialized (nothing is sent).
        """
        if metadata:
            raise ValueError("`metadata` is derived from `function`; it cannot also be given")
        serde_id = self.fx_serializer.code_serializer.identifier.strip()
        code = pack_buffers([self.fx_serializer.serialize(function)])
        if description is None:
            description = rest.docstring(function)
        return self._register(
            rest.function_registration(
                function.__name__,
                code,
                serialized=True,
                meta=rest.function_meta(serde_identifier=serde_id),
                description=description,
                public=public,
                group=group,
                ha_endpoint_id=ha_endpoint_id,
            )
        )

    def register_source_code(
        self,
        source: str,
        function_name: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        public: bool = False,
        group: UuidLike | None = None,
        ha_endpoint_id: UuidLike | None = None,
    ) -> str:
        """Register Python ``source`` whose entry point is ``function_name``; returns its id.

        The source travels as text (``serialized: false``), so it runs on any endpoint Python.
        ``metadata`` replaces the default ``{"python_version", "sdk_version"}``.
        """
        return self._register(
            rest.function_registration(
                function_name,
                source,
                serialized=False,
                meta=metadata or rest.function_meta(),
                description=description,
                public=public,
                group=group,
                ha_endpoint_id=ha_endpoint_id,
            )
        )

    def get_function(self, function_id: UuidLike) -> dict[str, Any]:
        """The registered function's document (name, code, description, metadata)."""
        return self._request(self._v2.get_function, require_uuid(function_id, "function_id")).data

    def delete_function(self, function_id: UuidLike) -> globus_sdk.GlobusHTTPResponse:
        """Delete a function; returns the raw response (``resp["result"]``), as the reference."""
        return self._request(self._v2.delete_function, require_uuid(function_id, "function_id"))

    def _register(self, body: dict[str, Any]) -> str:
        log.info("Registering function: %s", body["function_name"])
        data = self._request(self._v3.register_function, body).data
        rest.warn_ha(data)
        function_id = data.get("function_uuid") if isinstance(data, dict) else None
        if not isinstance(function_id, str):
            raise InvalidServiceResponse(
                f"The Compute service registered {body['function_name']!r} without answering "
                f"its function_uuid: {data!r}"
            )
        return function_id

    # -- tasks --------------------------------------------------------------------------------

    def create_batch(
        self,
        task_group_id: UuidLike | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        create_websocket_queue: bool = False,
        result_serializers: list[str] | None = None,
    ) -> Batch:
        """A new Batch using this Client's serializer; fill it with ``add``, then ``batch_run``."""
        return Batch(
            task_group_id,
            resource_specification,
            user_endpoint_config,
            create_websocket_queue,
            serializer=self.fx_serializer,
            user_runtime=user_runtime(),
            result_serializers=result_serializers,
        )

    def batch_run(self, endpoint_id: UuidLike, batch: Batch) -> dict[str, Any]:
        """Submit every task of ``batch`` in one request.

        Returns:
            The service's answer: ``tasks`` (function id -> task ids, in ``add`` order),
            ``task_group_id``, ``endpoint_id`` and ``request_id``.

        Raises:
            ValueError: The batch is empty (the reference would POST it anyway).
        """
        if len(batch) == 0:
            raise ValueError("No tasks specified for batch run")
        endpoint = require_uuid(endpoint_id, "endpoint_id")
        if self._hot_v3 is not None:
            path = f"/v3/endpoints/{endpoint}/submit"
            data = _json_or_none(self._request(self._hot_v3.post, path, batch.prepare()))
        else:
            data = self._request(self._v3.submit, endpoint, batch.prepare()).data
        rest.warn_ha(data)
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if isinstance(tasks, dict):
            for task_ids in tasks.values():
                if isinstance(task_ids, list):
                    self._trust.record_submission(endpoint, (str(t) for t in task_ids))
        return data

    def run(self, *args: Any, endpoint_id: UuidLike, function_id: UuidLike, **kwargs: Any) -> str:
        """Run ``function(*args, **kwargs)`` as one task; returns its task id.

        Arguments are serialized before any request: a bad one raises SerializationError here.

        Raises:
            InvalidServiceResponse: The service's answer names no task for the function.
        """
        batch = self.create_batch()
        batch.add(function_id, args, kwargs)
        answer = self.batch_run(endpoint_id, batch)
        fid = require_uuid(function_id, "function_id")
        try:
            return str(answer["tasks"][fid][0])
        except (KeyError, IndexError, TypeError) as exc:
            raise InvalidServiceResponse(
                f"The Compute service's submit answer lists no task for function {fid}: {answer!r}"
            ) from exc

    def get_task(self, task_id: UuidLike) -> TaskEntry:
        """The task's status entry (see ``task_table``); finished tasks come from the cache.

        Raises:
            TaskExecutionFailed: The task failed (its remote traceback, or the service's reason).
        """
        outcome = self._outcome(require_uuid(task_id, "task_id"))
        if outcome.exception is not None:
            raise copy.copy(outcome.exception)  # a copy: re-raising one object piles up frames
        return outcome.as_entry()

    def _outcome(self, task_id: str) -> TaskOutcome:
        cached = self._tasks.get(task_id)
        if cached is not None:
            return cached
        return self._tasks.update(task_id, self._request(self._v2.get_task, task_id).data)

    def get_result(self, task_id: UuidLike, timeout: float | None = None) -> Any:
        """The task's result, optionally waiting for it.

        Args:
            task_id: The task.
            timeout: None (the reference behaviour) asks once. A number of seconds waits up to
                that long for the task to finish, so scripts need no ``TaskPending`` loop: our
                embedded service holds each poll until the task ends; a remote service is
                polled every ``REMOTE_RESULT_POLL_S`` seconds, well within its rate limit.

        Raises:
            TaskPending: The task has not finished (within ``timeout``); ``reason`` is its
                status.
            TaskExecutionFailed: The task failed.
        """
        tid = require_uuid(task_id, "task_id")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = self._outcome(tid)
            if outcome.exception is not None:
                raise copy.copy(outcome.exception)
            if not outcome.pending:
                return outcome.result
            remaining = 0.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TaskPending(outcome.status)
            if self.long_poll:
                self.get_task_outcomes([tid], wait=min(remaining, MAX_LONG_POLL_S), remember=True)
            else:
                time.sleep(min(remaining, REMOTE_RESULT_POLL_S))

    def get_batch_result(
        self, task_id_list: Iterable[UuidLike], *, wait: float = 0.0
    ) -> dict[str, TaskEntry]:
        """Status entries of many tasks in at most one request, keyed by canonical task id.

        Unlike the reference, failed tasks are included, with their ``exception``; ids the
        service does not report are left out. So are ids our service leaves for a later
        request because its answer was full (it lists them under ``deferred``): they are not
        unknown, ask for them again (``get_task_outcomes`` tells them apart).

        Args:
            task_id_list: Task ids (str or UUID); duplicates are asked for once.
            wait: If > 0, ask the service to hold the request until one of the tasks finishes
                or ``wait`` seconds pass (our embedded service does, see ``long_poll``; the
                hosted one ignores it). Keep it below the HTTP timeout (60 s).
        """
        outcomes = self.get_task_outcomes(task_id_list, wait=wait, remember=True)
        return {task_id: outcome.as_entry() for task_id, outcome in outcomes.items()}

    def get_task_outcomes(
        self, task_id_list: Iterable[UuidLike], *, wait: float = 0.0, remember: bool = False
    ) -> TaskOutcomes:
        """``get_batch_result`` as typed outcomes: what the Executor's poller reads.

        Same request, same arguments; each value is a ``TaskOutcome`` instead of the
        reference's status dict, ``answer_bytes`` is the size of the service's answer and
        ``deferred`` the requested ids a full answer left out (ask again; never "unknown").
        Finished tasks already in the cache come from it, but new ones join it only with
        ``remember=True``: the Executor hands each result to its future and nothing else, so a
        result lives exactly as long as the user keeps it.
        """
        task_ids = list(dict.fromkeys(require_uuid(t, "task_id") for t in task_id_list))
        results = TaskOutcomes(
            (tid, known) for tid in task_ids if (known := self._tasks.get(tid)) is not None
        )
        missing = [tid for tid in task_ids if tid not in results]
        documents = self._fetch_task_documents(missing, wait, results) if missing else {}
        for tid in missing:
            if tid in documents:
                results[tid] = self._tasks.update(tid, documents[tid], remember=remember)
            else:
                log.debug("Requested task not in service response: %s", tid)
        return results

    def _fetch_task_documents(
        self, task_ids: list[str], wait: float, outcomes: TaskOutcomes
    ) -> dict[str, Any]:
        body = {"task_ids": task_ids}
        params = {"wait": f"{wait:g}"} if wait > 0 else None
        if self._hot_v2 is not None:
            raw = self._request(self._hot_v2.post, "/v2/batch_status", body, params)
        elif params:
            # globus-sdk's get_task_batch takes no query parameters; same path, same body.
            raw = self._request(
                self._v2.post, "/v2/batch_status", data=body, query_params=params
            ).binary_content
        else:
            raw = self._request(self._v2.get_task_batch, task_ids).binary_content
        outcomes.answer_bytes = len(raw)
        document = _json_or_none(raw)
        if not isinstance(document, dict):
            return {}
        deferred = document.get("deferred")
        if isinstance(deferred, list):
            outcomes.deferred = frozenset(
                tid for raw_id in deferred if (tid := canonical_uuid(raw_id)) is not None
            )
        results = document.get("results")
        return results if isinstance(results, dict) else {}

    def get_task_group(self, task_group_id: UuidLike) -> dict[str, Any]:
        """The task group document (``tasks``: ``[{"id", "created_at"}]``), for reloading."""
        tgid = require_uuid(task_group_id, "task_group_id")
        return self._request(self._v2.get_task_group, tgid).data

    def get_worker_hardware_details(self, endpoint_id: UuidLike) -> str:
        """Start a hardware report on the endpoint's workers; returns the task id.

        The report function is registered as source text (``st``), so it runs on any endpoint.
        """
        strategy = PureSourceTextInspect()
        body = rest.function_registration(
            run_hardware_report.__name__,
            pack_buffers([strategy.serialize(run_hardware_report)]),
            serialized=True,
            meta=rest.function_meta(serde_identifier=strategy.identifier.strip()),
            description=rest.docstring(run_hardware_report),
        )
        return self.run(endpoint_id=endpoint_id, function_id=self._register(body))

    # -- endpoints ----------------------------------------------------------------------------

    def get_endpoint_status(self, endpoint_uuid: UuidLike) -> dict[str, Any]:
        """``{"status": "online" | "offline", "details": {...}}``."""
        eid = require_uuid(endpoint_uuid, "endpoint_id")
        return self._request(self._v2.get_endpoint_status, eid).data

    def get_endpoint_metadata(self, endpoint_uuid: UuidLike) -> dict[str, Any]:
        """The endpoint's document (``uuid``, ``name``, versions, host, ...)."""
        return self._request(self._v2.get_endpoint, require_uuid(endpoint_uuid, "endpoint_id")).data

    def _own_endpoint_ids(self) -> list[str]:
        """Ids of the caller's own endpoints (what ``result_trust`` asks, once per Client)."""
        listed = self.get_endpoints()
        return [str(e["uuid"]) for e in listed if isinstance(e, dict) and "uuid" in e]

    def get_endpoints(self, role: str | None = None) -> list[dict[str, Any]]:
        """Endpoints visible to the caller; ``role="any"`` adds others' shared endpoints."""
        return self._request(self._v2.get_endpoints, **({"role": role} if role else {})).data

    def get_allowed_functions(self, endpoint_id: UuidLike) -> dict[str, Any]:
        """``{"endpoint_id", "restricted", "functions"?}``: the endpoint's function allow-list."""
        eid = require_uuid(endpoint_id, "endpoint_id")
        return self._request(self._v3.get_endpoint_allowlist, eid).data

    def stop_endpoint(self, endpoint_id: UuidLike) -> globus_sdk.GlobusHTTPResponse:
        """Lock (stop) an endpoint; returns the raw response, as the reference."""
        return self._request(self._v3.lock_endpoint, require_uuid(endpoint_id, "endpoint_id"))

    def delete_endpoint(self, endpoint_id: UuidLike) -> globus_sdk.GlobusHTTPResponse:
        """Delete an endpoint; returns the raw response, as the reference."""
        return self._request(self._v2.delete_endpoint, require_uuid(endpoint_id, "endpoint_id"))

    def get_result_amqp_url(self) -> dict[str, str]:
        """Fresh AMQP credentials for result queues (hosted service only)."""
        return self._request(self._v2.get_result_amqp_url).data

    def register_endpoint(
        self, name: str, endpoint_id: UuidLike | None, metadata: dict[str, Any] | None = None,
        multi_user: bool | None = None, display_name: str | None = None,
        allowed_functions: list[UuidLike] | None = None, auth_policy: UuidLike | None = None,
        subscription_id: UuidLike | None = None, public: bool | None = None,
        high_assurance: bool | None = None,
        admins: list[UuidLike] | tuple[UuidLike, ...] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Register a new endpoint (``endpoint_id=None``) or update one; for endpoint agents."""
        self.version_check()
        body = rest.endpoint_registration(
            name, metadata=metadata, multi_user=multi_user, display_name=display_name,
            allowed_functions=allowed_functions, auth_policy=auth_policy,
            subscription_id=subscription_id, public=public, high_assurance=high_assurance,
            admins=admins,
        )  # fmt: skip
        if endpoint_id:
            eid = require_uuid(endpoint_id, "endpoint_id")
            return self._request(self._v3.update_endpoint, eid, body).data
        return self._request(self._v3.register_endpoint, body).data


def _json_or_none(raw: bytes) -> Any:
    """An answer's JSON document, or None if it is not JSON (as globus-sdk's ``.data``).

    orjson: a poll answer can carry thousands of task documents.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
