"""The service functions: what the service does for each request, between routes and storage.

A route parses its request (JSON, path, query), calls one function here and shapes the answer.
Each function here takes the :class:`~globus_compute.service.context.ServiceContext` first, then
the caller and the request's content, and

- checks the content beyond JSON parsing (types, ids, ranges), refusing with ``ApiError``;
- applies the access rules of ``access.py``, with "load it, check access, else 404" written once
  in ``lookup.py``;
- calls the stores, in one transaction;
- notifies the long-poll :class:`~globus_compute.service.notify.Notifier` for exactly what it
  changed, so no route can forget to::

      tasks.submit ..................... wakes the endpoint's claim
      agent.report_results ............. wakes the tasks' waiters
      a lease release (re-registration,  wakes both: the failed tasks' waiters and the claims
        endpoint deletion, expiry)         of the endpoints whose tasks were re-queued

They are plain synchronous functions, except the two long polls (``agent.claim``,
``tasks.batch_status``), coroutines that park on the notifier between synchronous steps; so the
store calls can later move to a worker thread without changing the routes.

::

    identities   authenticate a bearer token
    lookup       path ids; the records a caller may see or manage, else 404
    functions    register, delete
    endpoints    register (releasing what a restarted agent held), list, status, lock, delete
    tasks        submit, task documents, batch status (long poll), task groups
    agent        heartbeat, claim (long poll), report results
    sweep        release expired leases, purge old tasks
"""
