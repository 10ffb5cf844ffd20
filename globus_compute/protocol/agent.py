"""The private HTTP protocol between the embedded service and an endpoint agent.

The public REST API (``/v2``, ``/v3``) is the reference contract that SDK clients speak. Endpoint
agents of the embedded service use three extra routes instead of the hosted service's AMQP
queues. Tasks and results always move in batches: one request carries many of them.

All routes need the endpoint owner's bearer token and answer 404 for an endpoint the caller does
not own. Bodies are JSON documents shaped as the ``TypedDict``s below.

::

    agent                                          service
    -----                                          -------
    POST /v3/endpoints {"endpoint_name", "metadata"}   -> {"endpoint_id", ...}
        (same owner + same name => same endpoint id; a registration changes settings only:
         what the request leaves out, such as the owner's ``public``, ``allowed_functions``
         or ``display_name``, is kept, and no task is taken from anybody)
    POST {AGENT_PREFIX}/{endpoint_id}/heartbeat  HeartbeatRequest -> HeartbeatResponse
        marks the endpoint online, renews the lease of every task it lists as held, and
        answers which held tasks the service has already resolved (``drop``)
        - ``phase: "starting"``: the first heartbeat of a new agent process; every task the
          endpoint held belonged to an earlier process, which is gone, so their leases are
          released at once (re-queued or failed, as if they had expired)
        - ``phase: "stopping"``: the agent's goodbye after a graceful stop; the endpoint is
          offline at once and the tasks still listed as held are released
    POST {AGENT_PREFIX}/{endpoint_id}/claim      ClaimRequest     -> ClaimResponse
        long-poll: answers as soon as one task is waiting, or after ``wait_s`` with none;
        claimed tasks move to ``running`` and are leased to this endpoint
    POST {AGENT_PREFIX}/{endpoint_id}/results    ResultsRequest   -> ResultsResponse
        terminal results; idempotent (a result for a task already terminal is ignored); a
        result the service cannot store (text that is not Unicode) fails that task alone

Leases: a claimed task belongs to the endpoint until its result arrives. Each heartbeat renews,
for ``lease_s`` seconds, the leases of the tasks it lists in ``held`` (claimed and not yet
accepted back as results; without ``held``, every lease of the endpoint). When a lease expires:

* while the endpoint still heartbeats, the claim's answer never reached the agent (the service
  died while answering, say): the task never ran and is re-queued, its attempt not counted;
* because the endpoint went silent (the agent died or hung), the task is re-queued if it has
  been attempted fewer than ``1 + max_retries_on_system_failure`` times (the agent sends that
  setting, the reference endpoint's name for it, in its registration metadata; default 0), and
  otherwise fails with ``EndpointLost`` traceback text.

The service's own downtime is not the endpoint's silence: when the service starts, every lease
gets a fresh term (``lease_s`` beyond ``MAX_RETRY_PAUSE_S``, the longest pause of an agent
between its tries), so the agent's next heartbeat renews what it holds. A result that
arrives for a task whose lease was released still counts while the task is not terminal (it was
re-queued and not yet run again). An agent that has not heard from the service for ``lease_s``
starts no new task until a heartbeat answers (its ``drop`` says which tasks are no longer its).
It counts each lease from the moment it *sent* the request that granted or renewed it, so a task
handed out by a claim whose answer it read more than ``lease_s`` after sending it (it was
frozen meanwhile) waits for a heartbeat that lists it; the agent keeps each long poll within a
third of ``lease_s``, so that while requests are answered promptly a heartbeat lists what a
claim handed out before the claim's own term ends.

The endpoint counts as offline once it has not heartbeated for ``lease_s`` seconds, or at once
after its goodbye.
"""

from __future__ import annotations

from typing import Any, TypedDict

AGENT_PREFIX = "/agent/v1/endpoints"

#: Longest long-poll a client may ask for, in seconds (claim ``wait_s``, batch_status ``wait``).
MAX_WAIT_S = 30.0

#: Longest pause, in seconds, between an agent's tries to reach a service that does not answer.
#: A restarted service hears from every live agent within this, so the fresh lease terms it
#: grants at start (``lease_s`` beyond it) cannot run out before a live agent's heartbeat.
MAX_RETRY_PAUSE_S = 3.0


class WorkerStatus(TypedDict):
    """The reference ``details`` of ``GET /v2/endpoints/{id}/status``."""

    total_workers: int
    idle_workers: int
    pending_tasks: int
    outstanding_tasks: int
    managers: int


#: ``HeartbeatRequest.phase`` of an agent process's first heartbeat, and of its goodbye.
PHASE_STARTING, PHASE_STOPPING = "starting", "stopping"


class HeartbeatRequest(TypedDict, total=False):
    status: WorkerStatus  # required
    held: list[str]  # ids of the tasks the agent holds; their leases are renewed
    phase: str  # PHASE_STARTING or PHASE_STOPPING; absent while running


class HeartbeatResponse(TypedDict, total=False):
    lease_s: float  # always
    #: True after ``POST /v3/endpoints/{id}/lock`` (``Client.stop_endpoint``): the agent exits.
    stop: bool  # always
    #: Held tasks the service has already resolved (failed ``EndpointLost`` while the agent was
    #: out of touch, say): the agent must not start them.
    drop: list[str]


class ClaimRequest(TypedDict):
    max_tasks: int
    wait_s: float


class ClaimedTask(TypedDict):
    task_id: str
    function_id: str
    #: The reference 3-buffer packed string: stored ``function_code`` + the submitted payload.
    task_buffer: str
    #: Import paths from the submit's ``result_serializers`` (reference class names), or None.
    result_serializers: list[str] | None
    resource_specification: dict[str, Any] | None
    user_endpoint_config: dict[str, Any] | None
    #: 1 on the first run; higher when an earlier attempt was lost.
    attempt: int


class ClaimResponse(TypedDict):
    tasks: list[ClaimedTask]
    lease_s: float


class TaskResult(TypedDict, total=False):
    task_id: str  # required
    status: str  # required: "success" or "failed"
    result: str  # on success: one serialized value ("00\n...")
    exception: str  # on failure: traceback text
    completion_t: str  # required: unix seconds as a string
    #: os, python_version, dill_version, globus_compute_sdk_version, endpoint_id,
    #: task_transitions
    details: dict[str, Any]


class ResultsRequest(TypedDict):
    results: list[TaskResult]


class ResultsResponse(TypedDict):
    accepted: int
    ignored: int
