"""Tasks: submit, task documents, batch status (with the ``wait`` long poll), task groups.

Submit is durable before it answers: the tasks are committed, then the endpoint's waiting claim
is woken. ``POST /v2/batch_status?wait=S`` is this service's extension for fast result delivery:
when none of the visible requested tasks is terminal, the request parks on in-memory wake-ups
until one is (or ``S`` seconds pass) and then answers the normal shape.

A batch status answer carries at most ``max_answer_bytes`` of results: the ids left out are
simply absent (the reference shape allows that, and clients ask again for what is missing), and
listed under ``deferred`` so that a client can tell "later" from "unknown".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from globus_compute.protocol.agent import MAX_WAIT_S
from globus_compute.protocol.ids import canonical_uuid
from globus_compute.protocol.states import TERMINAL_STATES
from globus_compute.service.access import endpoint_allows, needs_groups
from globus_compute.service.actions.lookup import path_uuid, runnable_function, visible_endpoint
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import forbidden, invalid, not_found
from globus_compute.service.notify import Listener
from globus_compute.service.records import User
from globus_compute.service.store.tasks import DocumentPage

log = logging.getLogger(__name__)

_TERMINAL_VALUES = frozenset(state.value for state in TERMINAL_STATES)

#: Bytes of results one slice of a batch status read loads before other requests get a turn
#: on the database thread (a result bigger than this is a slice of its own).
READ_SLICE_BYTES = 4 * 1024 * 1024

#: A task document, as the reference service shapes it.
TaskDocument = dict[str, Any]


@dataclass(frozen=True)
class BatchStatus:
    """One batch status answer.

    Attributes:
        results: The documents, keyed as the ids were sent.
        deferred: The ids (as sent) left for a later request because the answer was full.
        text_bytes: The bytes of results and tracebacks in ``results``.
    """

    results: dict[str, TaskDocument]
    deferred: list[str]
    text_bytes: int


@dataclass(frozen=True)
class Submission:
    """What a submit queued: its task group, its endpoint, and the new task ids.

    Attributes:
        tasks: For each key of the submitted ``tasks`` object (as sent), the ids of its tasks
            in the order of its payloads.
    """

    task_group_id: str
    endpoint_id: str
    tasks: dict[str, list[str]]


def _optional(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise invalid(f"{key} must be {what}")
    return value


def submit(
    ctx: ServiceContext, user: User, raw_endpoint_id: str, body: dict[str, Any]
) -> Submission:
    """Queue the tasks of a ``POST /v3/endpoints/{id}/submit`` body; wake the endpoint's claim.

    Args:
        body: ``tasks`` (function id -> list of payloads) and the optional settings the
            reference sends: ``task_group_id``, ``result_serializers``,
            ``resource_specification``, ``user_endpoint_config``.

    Raises:
        ApiError: 404 for an endpoint or function the caller may not use, 403 for a function
            outside the endpoint's allow-list or another identity's task group, 422 for a
            malformed body.
    """
    eid = path_uuid(raw_endpoint_id, "Endpoint")
    tasks = body.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise invalid("tasks must be a non-empty object mapping function ids to payload lists")
    serializers = _optional(body, "result_serializers", list, "a list of strings")
    if serializers is not None and not all(isinstance(s, str) for s in serializers):
        raise invalid("result_serializers must be a list of strings")
    spec = _optional(body, "resource_specification", dict, "an object")
    uec = _optional(body, "user_endpoint_config", dict, "an object")
    _optional(body, "create_queue", bool, "true or false")
    _optional(body, "user_runtime", dict, "an object")
    group = body.get("task_group_id")
    task_group_id = None
    if group is not None:
        task_group_id = canonical_uuid(group)
        if task_group_id is None:
            raise invalid(f"task_group_id {str(group)[:100]!r} is not a UUID")

    ep = visible_endpoint(ctx, user, eid)
    canonical: dict[str, str] = {}
    for key, payloads in tasks.items():
        fid = canonical_uuid(key)
        if fid is None:
            raise invalid(f"tasks key {key!r} is not a function UUID")
        if not isinstance(payloads, list) or not all(isinstance(p, str) for p in payloads):
            raise invalid(f"tasks[{key!r}] must be a list of payload strings")
        canonical[key] = fid
    functions = ctx.store.functions.get_functions(set(canonical.values()))
    groups: Collection[str] | None = None
    for fid in set(canonical.values()):
        fn = functions.get(fid)
        if groups is None and fn is not None and needs_groups(user, fn):
            groups = ctx.store.groups.user_groups(user)
        runnable_function(user, fn, groups or (), fid)
        if not endpoint_allows(ep, fid):
            raise forbidden(f"Function {fid} is not in the allowed functions of endpoint {eid}")
    pairs = [(canonical[key], p) for key, payloads in tasks.items() for p in payloads]
    if not pairs:
        raise invalid("tasks holds no payloads")
    try:
        task_group_id, task_ids = ctx.store.tasks.submit_tasks(
            user.id,
            eid,
            task_group_id,
            pairs,
            result_serializers=serializers,
            resource_specification=spec,
            user_endpoint_config=uec,
        )
    except PermissionError as exc:
        raise forbidden(str(exc)) from None
    ctx.notifier.notify_endpoints([eid])
    by_key: dict[str, list[str]] = {}
    it = iter(task_ids)
    for key, payloads in tasks.items():
        by_key[key] = [next(it) for _ in payloads]
    return Submission(task_group_id, eid, by_key)


def task_document(ctx: ServiceContext, user: User, raw_task_id: str) -> TaskDocument:
    """The document of one of ``user``'s tasks; 404 for anybody else's."""
    tid = path_uuid(raw_task_id, "Task")
    doc = ctx.store.tasks.task_documents(user.id, [tid]).get(tid)
    if doc is None:
        raise not_found("Task", tid)
    return doc


def requested_ids(body: dict[str, Any]) -> dict[str, list[str]]:
    """The canonical task ids of a batch status body, each with the spellings it was sent as.

    Raises:
        ApiError: 422 unless ``task_ids`` is a list of UUID strings.
    """
    raw_ids = body.get("task_ids")
    if not isinstance(raw_ids, list) or not all(isinstance(t, str) for t in raw_ids):
        raise invalid("task_ids must be a list of task id strings")
    sent_as: dict[str, list[str]] = {}
    for raw in raw_ids:
        tid = canonical_uuid(raw)
        if tid is None:
            raise invalid(f"task_ids: {raw[:100]!r} is not a task UUID")
        sent_as.setdefault(tid, []).append(raw)
    return sent_as


def read_slice(ctx: ServiceContext, user: User, task_ids: list[str], used: int) -> DocumentPage:
    """Documents of ``user``'s tasks among ``task_ids``, about ``READ_SLICE_BYTES`` of them."""
    return ctx.store.tasks.document_page(
        user.id, task_ids, ctx.config.max_answer_bytes, used=used, slice_bytes=READ_SLICE_BYTES
    )


async def read_documents(ctx: ServiceContext, user: User, task_ids: list[str]) -> DocumentPage:
    """As many documents of ``user``'s tasks among ``task_ids`` as fit one answer.

    Read slice by slice on the database thread, the slices after the first as bulk work, so a
    small request arriving during an answer of many big results waits for one slice at most.
    """
    docs: dict[str, TaskDocument] = {}
    size = 0
    rest = task_ids
    for n in range(len(task_ids) + 1):  # each slice reads at least one row
        # The first slice is the whole answer of a small request; later ones are bulk work.
        call = ctx.call_bulk if n else ctx.call
        page = await call(read_slice, user, rest, size)
        docs.update(page.docs)
        size += page.text_bytes
        if not page.unread:
            return DocumentPage(docs, page.deferred, size)
        rest = page.unread
    return DocumentPage(docs, [], size)


async def batch_status(
    ctx: ServiceContext, user: User, body: dict[str, Any], wait: float | None = None
) -> BatchStatus:
    """Documents of ``user``'s tasks among ``body["task_ids"]``, keyed as the ids were sent.

    Unknown ids and those of other identities are simply absent; so are the ids that did not
    fit the answer, which are also listed as deferred.

    Args:
        wait: When none of the found tasks is terminal, wait up to this many seconds (at most
            ``MAX_WAIT_S``) for one to be.

    Raises:
        ApiError: 422 for a body without a list of task UUIDs.
    """
    sent_as = requested_ids(body)
    ids = list(sent_as)
    if wait:
        with ctx.notifier.listen([("task", t) for t in ids]) as listener:
            page = await read_documents(ctx, user, ids)
            if page.docs and not _any_terminal(page.docs):
                page = await _wait_for_terminal(ctx, user, list(page.docs), listener, wait)
    else:
        page = await read_documents(ctx, user, ids)
    results: dict[str, TaskDocument] = {}
    for tid, doc in page.docs.items():
        for raw in sent_as[tid]:
            results[raw] = doc if raw == tid else {**doc, "task_id": raw}
    deferred = [raw for tid in page.deferred for raw in sent_as[tid]]
    return BatchStatus(results, deferred, page.text_bytes)


def _any_terminal(docs: dict[str, TaskDocument]) -> bool:
    return any(d["status"] in _TERMINAL_VALUES for d in docs.values())


async def _wait_for_terminal(
    ctx: ServiceContext, user: User, ids: list[str], listener: Listener, wait: float
) -> DocumentPage:
    """Re-read ``ids`` each time one of them is reported, until one is terminal or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_WAIT_S)
    while True:
        woke = await listener.wait(deadline - loop.time())
        page = await read_documents(ctx, user, ids)
        if not woke or ctx.notifier.closed or _any_terminal(page.docs):
            return page


def task_group(ctx: ServiceContext, user: User, raw_id: str) -> tuple[str, list[tuple[str, float]]]:
    """``(task_group_id, [(task_id, created), ...])`` of one of ``user``'s task groups."""
    tgid = path_uuid(raw_id, "Task group")
    rows = ctx.store.tasks.task_group(user.id, tgid)
    if rows is None:
        raise not_found("Task group", tgid)
    return tgid, rows
