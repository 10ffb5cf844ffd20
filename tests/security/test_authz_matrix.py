"""The authorization matrix: every route, every kind of caller that must be turned away.

Why: the service is multi-user (identities with tokens, groups, public functions, public
endpoints). A mistake in one route's ownership check hands one user's code, payloads or results
to another, or lets them run tasks on someone else's machine. Each denial is checked for its
status (401/403/404) AND for what its body gives away: a foreign id must answer exactly like an
unknown id (apart from the id itself and the request id), and must never contain the resource's
name, code, status or result. The allowed cases are checked too, end to end through the agent
routes, so that the matrix does not pass by refusing everything.

Identities (see ``tests.support.service.create_identities``): alice (the default identity, owns
everything below unless said otherwise), bob (in alice's group), mallory (in no group).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from globus_compute.protocol.agent import AGENT_PREFIX
from tests.support.service import Identities, RunningService

pytestmark = pytest.mark.integration

SECRET_CODE = "24\nst\nALICE-PRIVATE-SOURCE-CODE"
SECRET_RESULT = '11\n"ALICE-SECRET-RESULT-7f3a"'
SECRET_FN_NAME = "alice_private_function"
SECRET_EP_NAME = "alice-private-endpoint"
#: Strings of alice's that no denial body may contain.
SECRETS = [SECRET_CODE, "ALICE-PRIVATE-SOURCE-CODE", "ALICE-SECRET-RESULT", SECRET_FN_NAME,
           SECRET_EP_NAME]  # fmt: skip
#: Task statuses: a denial for a task id must not reveal which one the task is in.
STATUSES = ["success", "failed", "waiting-for-ep", "running"]


@dataclass
class World:
    """alice's, bob's and mallory's resources, made through the public and agent routes."""

    svc: RunningService
    who: Identities
    f_priv: str = ""
    f_grp: str = ""
    f_pub: str = ""
    e_alice: str = ""
    e_alice_pub: str = ""
    e_bob: str = ""
    e_mal: str = ""
    t_done: str = ""
    t_pending: str = ""
    tg: str = ""
    checked: dict[str, int] = field(default_factory=dict)

    def token(self, who: str) -> str | None:
        return {
            "alice": self.who.alice,
            "bob": self.who.bob,
            "mallory": self.who.mallory,
            "none": None,
            "unknown": "not-a-token-" + uuid.uuid4().hex,
            "alice-truncated": self.who.alice[:-1],
        }[who]

    def call(self, who: str, method: str, path: str, body: Any = None) -> requests.Response:
        kw: dict[str, Any] = {} if body is None else {"json": body}
        return self.svc.call(method, path, token=self.token(who), **kw)


def _ok(resp: requests.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def world(service: RunningService, identities: Identities) -> Iterator[World]:
    w = World(service, identities)

    def fn(who: str, name: str, **extra: Any) -> str:
        body = {"function_name": name, "function_code": SECRET_CODE, **extra}
        return _ok(w.call(who, "POST", "/v3/functions", body))["function_uuid"]

    def ep(who: str, name: str, **extra: Any) -> str:
        return _ok(w.call(who, "POST", "/v3/endpoints", {"endpoint_name": name, **extra}))[
            "endpoint_id"
        ]

    w.f_priv = fn("alice", SECRET_FN_NAME)
    w.f_grp = fn("alice", SECRET_FN_NAME + "_grp", group=identities.group)
    w.f_pub = fn("alice", SECRET_FN_NAME + "_pub", public=True)
    w.e_alice = ep("alice", SECRET_EP_NAME)
    w.e_alice_pub = ep("alice", SECRET_EP_NAME + "-public", public=True)
    w.e_bob = ep("bob", "bob-endpoint")
    w.e_mal = ep("mallory", "mallory-endpoint")
    w.tg = str(uuid.uuid4())
    sub = _ok(w.call("alice", "POST", f"/v3/endpoints/{w.e_alice}/submit",
                     {"tasks": {w.f_priv: ["p1", "p2"]}, "task_group_id": w.tg}))  # fmt: skip
    w.t_done, w.t_pending = sub["tasks"][w.f_priv]
    # alice's agent claims the first task and reports a result; the second stays queued.
    claimed = _ok(w.call("alice", "POST", f"{AGENT_PREFIX}/{w.e_alice}/claim",
                         {"max_tasks": 1, "wait_s": 0}))["tasks"]  # fmt: skip
    assert [t["task_id"] for t in claimed] == [w.t_done]
    done = {"task_id": w.t_done, "status": "success", "result": SECRET_RESULT, "completion_t": "1"}
    assert _ok(w.call("alice", "POST", f"{AGENT_PREFIX}/{w.e_alice}/results",
                      {"results": [done]}))["accepted"] == 1  # fmt: skip
    yield w
    print(f"\nauthorization denials checked: {sum(w.checked.values())} {w.checked}")


# -- the routes ---------------------------------------------------------------------------------

#: route (as in the served OpenAPI schema) -> request aimed at alice's private resources.
ROUTES: dict[str, Callable[[World], tuple[str, str, Any]]] = {
    "GET /v2/version": lambda w: ("GET", "/v2/version", None),
    "POST /v3/functions": lambda w: (
        "POST", "/v3/functions", {"function_name": "x", "function_code": "1\nx"}),
    "GET /v2/functions/{function_id}": lambda w: ("GET", f"/v2/functions/{w.f_priv}", None),
    "DELETE /v2/functions/{function_id}": lambda w: ("DELETE", f"/v2/functions/{w.f_priv}", None),
    "POST /v3/endpoints/{endpoint_id}/submit": lambda w: (
        "POST", f"/v3/endpoints/{w.e_alice}/submit", {"tasks": {w.f_priv: ["p"]}}),
    "GET /v2/tasks/{task_id}": lambda w: ("GET", f"/v2/tasks/{w.t_done}", None),
    "POST /v2/batch_status": lambda w: ("POST", "/v2/batch_status", {"task_ids": [w.t_done]}),
    "GET /v2/taskgroup/{task_group_id}": lambda w: ("GET", f"/v2/taskgroup/{w.tg}", None),
    "GET /v2/get_amqp_result_connection_url": lambda w: (
        "GET", "/v2/get_amqp_result_connection_url", None),
    "POST /v3/endpoints": lambda w: ("POST", "/v3/endpoints", {"endpoint_name": "x"}),
    "PUT /v3/endpoints/{endpoint_id}": lambda w: (
        "PUT", f"/v3/endpoints/{w.e_alice}", {"endpoint_name": "taken-over"}),
    "GET /v2/endpoints": lambda w: ("GET", "/v2/endpoints?role=any", None),
    "GET /v2/endpoints/{endpoint_id}": lambda w: ("GET", f"/v2/endpoints/{w.e_alice}", None),
    "GET /v2/endpoints/{endpoint_id}/status": lambda w: (
        "GET", f"/v2/endpoints/{w.e_alice}/status", None),
    "POST /v3/endpoints/{endpoint_id}/lock": lambda w: (
        "POST", f"/v3/endpoints/{w.e_alice}/lock", None),
    "DELETE /v2/endpoints/{endpoint_id}": lambda w: ("DELETE", f"/v2/endpoints/{w.e_alice}", None),
    "GET /v3/endpoints/{endpoint_id}/allowed_functions": lambda w: (
        "GET", f"/v3/endpoints/{w.e_alice}/allowed_functions", None),
    f"POST {AGENT_PREFIX}/{{endpoint_id}}/heartbeat": lambda w: (
        "POST", f"{AGENT_PREFIX}/{w.e_alice}/heartbeat", {"status": {}}),
    f"POST {AGENT_PREFIX}/{{endpoint_id}}/claim": lambda w: (
        "POST", f"{AGENT_PREFIX}/{w.e_alice}/claim", {"max_tasks": 10, "wait_s": 0}),
    f"POST {AGENT_PREFIX}/{{endpoint_id}}/results": lambda w: (
        "POST", f"{AGENT_PREFIX}/{w.e_alice}/results",
        {"results": [{"task_id": w.t_pending, "status": "success", "result": "00\nx",
                      "completion_t": "1"}]}),
}  # fmt: skip

#: Routes anyone may call: the reference client checks versions before it has a token.
OPEN_ROUTES = {"GET /v2/version"}


@pytest.mark.timeout(30)
def test_matrix_covers_every_served_route(service: RunningService) -> None:
    """A new route must get a row here: the matrix is compared with the served schema."""
    paths = service.call("GET", "/openapi.json").json()["paths"]
    served = {f"{m.upper()} {p}" for p, ops in paths.items() for m in ops}
    assert served == set(ROUTES)


def _assert_error_body(resp: requests.Response, statuses: tuple[int, ...]) -> dict[str, Any]:
    assert resp.status_code in statuses, f"{resp.status_code} {resp.text[:300]}"
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"code", "message", "request_id"}, body
    return body


def _assert_nothing_leaked(resp: requests.Response) -> None:
    for secret in SECRETS:
        assert secret not in resp.text, f"{secret!r} leaked: {resp.text[:300]}"
    words = set(re.findall(r"[a-z-]+", resp.text))
    assert not words & set(STATUSES), f"a task status leaked: {resp.text[:300]}"


def _same_as_unknown(
    w: World, who: str, denied: requests.Response, method: str, path: str, body: Any, real_id: str
) -> None:
    """The denial reads exactly like the answer for an id that does not exist."""
    fake = str(uuid.uuid4())
    as_text = json.dumps(body) if body is not None else None
    unknown = w.call(who, method, path.replace(real_id, fake),
                     json.loads(as_text.replace(real_id, fake)) if as_text else None)  # fmt: skip
    assert unknown.status_code == denied.status_code, unknown.text

    def norm(resp: requests.Response, ident: str) -> Any:
        doc = resp.json()
        if isinstance(doc, dict):
            doc.pop("request_id", None)
        return json.loads(json.dumps(doc).replace(ident, "<id>"))

    assert norm(denied, real_id) == norm(unknown, fake)


# -- 1. no token, an unknown token, a truncated real token: 401 on every route ------------------

UNAUTHENTICATED = ["none", "unknown", "alice-truncated"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("who", UNAUTHENTICATED)
@pytest.mark.parametrize("route", sorted(set(ROUTES) - OPEN_ROUTES))
def test_unauthenticated_caller_gets_401(world: World, route: str, who: str) -> None:
    method, path, body = ROUTES[route](world)
    resp = world.call(who, method, path, body)
    err = _assert_error_body(resp, (401,))
    assert err["code"] == "UNAUTHORIZED" and resp.headers.get("www-authenticate") == "Bearer"
    _assert_nothing_leaked(resp)
    world.checked["401"] = world.checked.get("401", 0) + 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("who", UNAUTHENTICATED)
def test_open_version_route_reveals_nothing_about_identities(world: World, who: str) -> None:
    """``/v2/version`` is open on purpose; it answers versions and nothing else."""
    doc = _ok(world.call(who, "GET", "/v2/version?service=all"))
    assert set(doc) == {"api", "min_sdk_version", "min_ep_version", "min_endpoint_version",
                        "git_sha"}  # fmt: skip


@pytest.mark.timeout(30)
@pytest.mark.parametrize("who", UNAUTHENTICATED)
def test_schema_needs_a_token_and_there_are_no_doc_pages(world: World, who: str) -> None:
    """Regression (issue 15): ``/openapi.json``, ``/docs`` and ``/redoc`` answered without a
    token, contrary to "every route but ``GET /v2/version`` needs a bearer token"."""
    schema = world.call(who, "GET", "/openapi.json")
    assert _assert_error_body(schema, (401,))["code"] == "UNAUTHORIZED"
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert world.call(who, "GET", page).status_code == 404
        assert world.call("alice", "GET", page).status_code == 404
    assert "/v2/batch_status" in _ok(world.call("alice", "GET", "/openapi.json"))["paths"]


# -- 2. authenticated, but not allowed ----------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    """One caller doing one thing they may not do.

    ``compare_id`` names the World attribute whose id, replaced by an unknown one, must give the
    same answer (None where an unknown id legitimately behaves differently, e.g. a PUT of a new
    id creates an endpoint).
    """

    who: str
    request: Callable[[World], tuple[str, str, Any]]
    statuses: tuple[int, ...]
    compare_id: str | None


def _submit(ep: str, fn: str, **extra: Any) -> Callable[[World], tuple[str, str, Any]]:
    return lambda w: ("POST", f"/v3/endpoints/{getattr(w, ep)}/submit",
                      {"tasks": {getattr(w, fn): ["p"]}, **extra})  # fmt: skip


def _agent(ep: str, action: str) -> Callable[[World], tuple[str, str, Any]]:
    bodies = {"heartbeat": {"status": {}}, "claim": {"max_tasks": 10, "wait_s": 0}}
    return lambda w: ("POST", f"{AGENT_PREFIX}/{getattr(w, ep)}/{action}", bodies.get(action) or {
        "results": [{"task_id": w.t_pending, "status": "success", "result": "00\nx",
                     "completion_t": "1"}]})  # fmt: skip


def _get(fmt: str) -> Callable[[World], tuple[str, str, Any]]:
    return lambda w: ("GET", fmt.format(w=w), None)


DENIALS: dict[str, Denial] = {}
for _who in ("bob", "mallory"):
    DENIALS.update({
        f"{_who}: read alice's private function": Denial(
            _who, _get("/v2/functions/{w.f_priv}"), (404,), "f_priv"),
        f"{_who}: delete alice's private function": Denial(
            _who, lambda w: ("DELETE", f"/v2/functions/{w.f_priv}", None), (404,), "f_priv"),
        f"{_who}: read alice's task (done)": Denial(
            _who, _get("/v2/tasks/{w.t_done}"), (404,), "t_done"),
        f"{_who}: read alice's task (pending)": Denial(
            _who, _get("/v2/tasks/{w.t_pending}"), (404,), "t_pending"),
        f"{_who}: batch_status of alice's tasks": Denial(
            _who, lambda w: ("POST", "/v2/batch_status", {"task_ids": [w.t_done]}), (200,),
            "t_done"),
        f"{_who}: batch_status long-poll on alice's pending task": Denial(
            _who, lambda w: ("POST", "/v2/batch_status?wait=0.2", {"task_ids": [w.t_pending]}),
            (200,), "t_pending"),
        f"{_who}: read alice's task group": Denial(
            _who, _get("/v2/taskgroup/{w.tg}"), (404,), "tg"),
        f"{_who}: submit a public function to alice's private endpoint": Denial(
            _who, _submit("e_alice", "f_pub"), (404,), "e_alice"),
        f"{_who}: submit alice's private function to own endpoint": Denial(
            _who, _submit(f"e_{'bob' if _who == 'bob' else 'mal'}", "f_priv"), (404,), "f_priv"),
        f"{_who}: add tasks to alice's task group": Denial(
            _who, _submit(f"e_{'bob' if _who == 'bob' else 'mal'}", "f_pub",
                          task_group_id="{tg}"), (403,), None),
        f"{_who}: read alice's private endpoint": Denial(
            _who, _get("/v2/endpoints/{w.e_alice}"), (404,), "e_alice"),
        f"{_who}: status of alice's private endpoint": Denial(
            _who, _get("/v2/endpoints/{w.e_alice}/status"), (404,), "e_alice"),
        f"{_who}: allowed_functions of alice's private endpoint": Denial(
            _who, _get("/v3/endpoints/{w.e_alice}/allowed_functions"), (404,), "e_alice"),
        f"{_who}: lock alice's private endpoint": Denial(
            _who, lambda w: ("POST", f"/v3/endpoints/{w.e_alice}/lock", None), (404,), "e_alice"),
        f"{_who}: delete alice's private endpoint": Denial(
            _who, lambda w: ("DELETE", f"/v2/endpoints/{w.e_alice}", None), (404,), "e_alice"),
        f"{_who}: re-register alice's private endpoint by id": Denial(
            _who, lambda w: ("PUT", f"/v3/endpoints/{w.e_alice}", {"endpoint_name": "mine"}),
            (404,), None),
        f"{_who}: lock alice's public endpoint": Denial(
            _who, lambda w: ("POST", f"/v3/endpoints/{w.e_alice_pub}/lock", None), (403,), None),
        f"{_who}: delete alice's public endpoint": Denial(
            _who, lambda w: ("DELETE", f"/v2/endpoints/{w.e_alice_pub}", None), (403,), None),
        f"{_who}: re-register alice's public endpoint by id": Denial(
            _who, lambda w: ("PUT", f"/v3/endpoints/{w.e_alice_pub}", {"endpoint_name": "m"}),
            (403,), None),
        f"{_who}: delete alice's public function": Denial(
            _who, lambda w: ("DELETE", f"/v2/functions/{w.f_pub}", None), (403,), None),
    })  # fmt: skip
    for _ep in ("e_alice", "e_alice_pub"):
        for _action in ("heartbeat", "claim", "results"):
            DENIALS[f"{_who}: agent {_action} on {_ep}"] = Denial(
                _who, _agent(_ep, _action), (404,), _ep
            )
DENIALS.update({
    # Group rules: only members run a group-shared function; members may not delete it.
    "mallory (not in the group): read the group-shared function": Denial(
        "mallory", _get("/v2/functions/{w.f_grp}"), (404,), "f_grp"),
    "mallory (not in the group): run the group-shared function on own endpoint": Denial(
        "mallory", _submit("e_mal", "f_grp"), (404,), "f_grp"),
    "mallory (not in the group): delete the group-shared function": Denial(
        "mallory", lambda w: ("DELETE", f"/v2/functions/{w.f_grp}", None), (404,), "f_grp"),
    "bob (in the group, not owner): delete the group-shared function": Denial(
        "bob", lambda w: ("DELETE", f"/v2/functions/{w.f_grp}", None), (403,), None),
    # The group grants the function, not alice's endpoint.
    "bob (in the group): run the group-shared function on alice's private endpoint": Denial(
        "bob", _submit("e_alice", "f_grp"), (404,), "e_alice"),
})  # fmt: skip


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(DENIALS))
def test_denied(world: World, name: str) -> None:
    d = DENIALS[name]
    method, path, body = d.request(world)
    if body and "task_group_id" in body:
        body = {**body, "task_group_id": world.tg}
    before = _ok(world.call("alice", "POST", "/v2/batch_status",
                            {"task_ids": [world.t_done, world.t_pending]}))  # fmt: skip
    resp = world.call(d.who, method, path, body)
    if resp.status_code == 200:
        # batch_status answers 200 with the foreign ids simply absent.
        assert d.statuses == (200,)
        assert resp.json() == {"response": "batch", "results": {}}
    else:
        _assert_error_body(resp, d.statuses)
    _assert_nothing_leaked(resp)
    if d.compare_id is not None:
        _same_as_unknown(world, d.who, resp, method, path, body, getattr(world, d.compare_id))
    # Nothing of alice's changed: her tasks, function, endpoints are as they were.
    after = _ok(world.call("alice", "POST", "/v2/batch_status",
                           {"task_ids": [world.t_done, world.t_pending]}))  # fmt: skip
    assert after == before
    assert after["results"][world.t_done]["result"] == SECRET_RESULT
    assert after["results"][world.t_pending]["status"] == "waiting-for-ep"
    for fid in (world.f_priv, world.f_grp, world.f_pub):
        assert world.call("alice", "GET", f"/v2/functions/{fid}").status_code == 200
    for eid, name_ in (
        (world.e_alice, SECRET_EP_NAME),
        (world.e_alice_pub, SECRET_EP_NAME + "-public"),
    ):
        doc = _ok(world.call("alice", "GET", f"/v2/endpoints/{eid}"))
        assert doc["name"] == name_
    assert _ok(world.call("alice", "POST", f"{AGENT_PREFIX}/{world.e_alice}/heartbeat",
                          {"status": {}}))["stop"] is False  # fmt: skip
    world.checked["403/404"] = world.checked.get("403/404", 0) + 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("who", ["bob", "mallory"])
def test_endpoint_lists_hide_private_endpoints(world: World, who: str) -> None:
    """Listing endpoints shows one's own and (role=any) public ones, never a private foreign one."""
    own = {e["uuid"] for e in _ok(world.call(who, "GET", "/v2/endpoints"))}
    anyrole = {e["uuid"] for e in _ok(world.call(who, "GET", "/v2/endpoints?role=any"))}
    assert world.e_alice not in own | anyrole and world.e_alice_pub not in own
    assert world.e_alice_pub in anyrole
    mine = world.e_bob if who == "bob" else world.e_mal
    assert mine in own
    world.checked["list"] = world.checked.get("list", 0) + 1


def _error_without_request_id(resp: requests.Response) -> dict[str, Any]:
    body = _assert_error_body(resp, (resp.status_code,))
    body.pop("request_id")
    return body


@pytest.mark.timeout(30)
def test_put_on_a_foreign_private_endpoint_answers_like_get_on_an_unknown_id(world: World) -> None:
    """Regression (issue 15): PUT answered 403 where GET answered 404, revealing that the id
    exists. (A PUT of a free id registers it, as the reference endpoint does on first start,
    so PUT is compared with GET of the same id, which must read exactly like an unknown id.)"""
    put = world.call("mallory", "PUT", f"/v3/endpoints/{world.e_alice}", {"endpoint_name": "m"})
    get = world.call("mallory", "GET", f"/v2/endpoints/{world.e_alice}")
    assert put.status_code == get.status_code == 404
    assert _error_without_request_id(put) == _error_without_request_id(get)
    _assert_nothing_leaked(put)


@pytest.mark.timeout(30)
def test_deleted_endpoint_id_is_never_reused_by_another_identity(world: World) -> None:
    """Regression (issue 15): once alice deleted her endpoint, mallory registered its id as her
    own public endpoint and received alice's next submit to it."""
    eid = _ok(world.call("alice", "POST", "/v3/endpoints", {"endpoint_name": "short-lived"}))[
        "endpoint_id"
    ]
    _ok(world.call("alice", "DELETE", f"/v2/endpoints/{eid}"))
    for who in ("mallory", "bob"):
        put = world.call(who, "PUT", f"/v3/endpoints/{eid}", {"endpoint_name": "mine",
                                                               "public": True})  # fmt: skip
        get = world.call(who, "GET", f"/v2/endpoints/{eid}")
        assert put.status_code == get.status_code == 404, put.text
        assert _error_without_request_id(put) == _error_without_request_id(get)
    submit = world.call("alice", "POST", f"/v3/endpoints/{eid}/submit",
                        {"tasks": {world.f_pub: ["p"]}})  # fmt: skip
    assert submit.status_code == 404  # reaches nobody: the id is nobody's endpoint now
    listed = {e["uuid"] for e in _ok(world.call("mallory", "GET", "/v2/endpoints?role=any"))}
    assert eid not in listed


@pytest.mark.timeout(30)
def test_forged_result_for_a_foreign_task_is_ignored(world: World) -> None:
    """mallory's agent reports a result for alice's queued task on mallory's own endpoint."""
    forged = {"task_id": world.t_pending, "status": "success", "result": "00\nforged",
              "completion_t": "1"}  # fmt: skip
    reply = _ok(world.call("mallory", "POST", f"{AGENT_PREFIX}/{world.e_mal}/results",
                           {"results": [forged]}))  # fmt: skip
    assert reply == {"accepted": 0, "ignored": 1}
    doc = _ok(world.call("alice", "GET", f"/v2/tasks/{world.t_pending}"))
    assert doc["status"] == "waiting-for-ep" and "result" not in doc
    # And mallory's claims on her own endpoint never hand out alice's queued task.
    claimed = _ok(world.call("mallory", "POST", f"{AGENT_PREFIX}/{world.e_mal}/claim",
                             {"max_tasks": 100, "wait_s": 0}))["tasks"]  # fmt: skip
    assert world.t_pending not in {t["task_id"] for t in claimed}
    world.checked["forgery"] = world.checked.get("forgery", 0) + 2


# -- 3. what is allowed works ------------------------------------------------------------------


def _run_through_agent(w: World, who: str, ep: str, fn: str) -> str:
    """Submit ``fn`` to ``ep`` as ``who``, have ``ep``'s owner's agent run it, return the task."""
    sub = _ok(w.call(who, "POST", f"/v3/endpoints/{ep}/submit", {"tasks": {fn: ["payload"]}}))
    tid = sub["tasks"][fn][0]
    return tid


def _agent_completes(w: World, owner: str, ep: str, tid: str, fn: str) -> None:
    claimed = _ok(w.call(owner, "POST", f"{AGENT_PREFIX}/{ep}/claim",
                         {"max_tasks": 100, "wait_s": 0}))["tasks"]  # fmt: skip
    mine = [t for t in claimed if t["task_id"] == tid]
    assert mine and mine[0]["function_id"] == fn
    assert mine[0]["task_buffer"] == SECRET_CODE + "payload"  # the function's code + payload
    result = {"task_id": tid, "status": "success", "result": f'11\n"{owner}-ran-it"',
              "completion_t": "2"}  # fmt: skip
    assert _ok(w.call(owner, "POST", f"{AGENT_PREFIX}/{ep}/results",
                      {"results": [result]}))["accepted"] == 1  # fmt: skip


@pytest.mark.timeout(30)
def test_owner_may_do_everything_with_own_resources(world: World) -> None:
    w = world
    assert _ok(w.call("alice", "GET", f"/v2/functions/{w.f_priv}"))["function_code"] == SECRET_CODE
    assert _ok(w.call("alice", "GET", f"/v2/tasks/{w.t_done}"))["result"] == SECRET_RESULT
    group = _ok(w.call("alice", "GET", f"/v2/taskgroup/{w.tg}"))
    assert {t["id"] for t in group["tasks"]} == {w.t_done, w.t_pending}
    for path in (f"/v2/endpoints/{w.e_alice}", f"/v2/endpoints/{w.e_alice}/status",
                 f"/v3/endpoints/{w.e_alice}/allowed_functions"):  # fmt: skip
        _ok(w.call("alice", "GET", path))
    # A disposable function and endpoint for the destructive routes.
    fid = _ok(
        w.call(
            "alice", "POST", "/v3/functions", {"function_name": "tmp", "function_code": SECRET_CODE}
        )
    )["function_uuid"]
    eid = _ok(w.call("alice", "POST", "/v3/endpoints", {"endpoint_name": "tmp"}))["endpoint_id"]
    tid = _run_through_agent(w, "alice", eid, fid)
    _agent_completes(w, "alice", eid, tid, fid)
    assert _ok(w.call("alice", "GET", f"/v2/tasks/{tid}"))["result"] == '11\n"alice-ran-it"'
    _ok(w.call("alice", "PUT", f"/v3/endpoints/{eid}", {"endpoint_name": "tmp"}))
    _ok(w.call("alice", "POST", f"/v3/endpoints/{eid}/lock"))
    assert _ok(w.call("alice", "POST", f"{AGENT_PREFIX}/{eid}/heartbeat", {"status": {}}))["stop"]
    _ok(w.call("alice", "DELETE", f"/v2/functions/{fid}"))
    _ok(w.call("alice", "DELETE", f"/v2/endpoints/{eid}"))
    assert w.call("alice", "GET", f"/v2/functions/{fid}").status_code == 404
    assert w.call("alice", "GET", f"/v2/endpoints/{eid}").status_code == 404


@pytest.mark.timeout(30)
def test_group_member_runs_group_function_on_own_endpoint(world: World) -> None:
    """bob (in the group) runs alice's group-shared function on bob's endpoint; alice, the
    function's owner, still cannot see bob's task (task documents belong to their submitter)."""
    w = world
    assert _ok(w.call("bob", "GET", f"/v2/functions/{w.f_grp}"))["function_uuid"] == w.f_grp
    tid = _run_through_agent(w, "bob", w.e_bob, w.f_grp)
    _agent_completes(w, "bob", w.e_bob, tid, w.f_grp)
    assert _ok(w.call("bob", "GET", f"/v2/tasks/{tid}"))["result"] == '11\n"bob-ran-it"'
    hidden = w.call("alice", "GET", f"/v2/tasks/{tid}")
    assert hidden.status_code == 404 and "bob-ran-it" not in hidden.text


@pytest.mark.timeout(30)
def test_anyone_runs_a_public_function(world: World) -> None:
    """mallory (no group) runs alice's public function on her own endpoint, and on alice's
    public endpoint (whose agent, alice's, runs it; only mallory sees the result)."""
    w = world
    assert _ok(w.call("mallory", "GET", f"/v2/functions/{w.f_pub}"))["function_uuid"] == w.f_pub
    tid = _run_through_agent(w, "mallory", w.e_mal, w.f_pub)
    _agent_completes(w, "mallory", w.e_mal, tid, w.f_pub)
    assert _ok(w.call("mallory", "GET", f"/v2/tasks/{tid}"))["result"] == '11\n"mallory-ran-it"'
    tid = _run_through_agent(w, "mallory", w.e_alice_pub, w.f_pub)
    _agent_completes(w, "alice", w.e_alice_pub, tid, w.f_pub)
    assert _ok(w.call("mallory", "GET", f"/v2/tasks/{tid}"))["result"] == '11\n"alice-ran-it"'
    assert w.call("alice", "GET", f"/v2/tasks/{tid}").status_code == 404


@pytest.mark.timeout(30)
def test_public_endpoint_runs_any_callers_own_function(world: World) -> None:
    """Documented limit: a ``public`` endpoint accepts any identity's functions (here mallory's
    private one), and its owner's agent receives that code to run."""
    w = world
    body = {"function_name": "m", "function_code": SECRET_CODE}
    fid = _ok(w.call("mallory", "POST", "/v3/functions", body))["function_uuid"]
    tid = _run_through_agent(w, "mallory", w.e_alice_pub, fid)
    _agent_completes(w, "alice", w.e_alice_pub, tid, fid)
    assert _ok(w.call("mallory", "GET", f"/v2/tasks/{tid}"))["status"] == "success"
    # The private endpoint, by contrast, refuses it.
    refused = w.call("mallory", "POST", f"/v3/endpoints/{w.e_alice}/submit",
                     {"tasks": {fid: ["p"]}})  # fmt: skip
    assert refused.status_code == 404


@pytest.mark.timeout(30)
def test_registering_for_a_group_one_is_not_in_only_shares_ones_own_function(
    world: World,
) -> None:
    """Documented limit: mallory may name alice's group on her own function; that grants the
    group's members access to mallory's function and mallory nothing of theirs."""
    w = world
    body = {"function_name": "gift", "function_code": "1\nx", "group": w.who.group}
    fid = _ok(w.call("mallory", "POST", "/v3/functions", body))["function_uuid"]
    assert _ok(w.call("bob", "GET", f"/v2/functions/{fid}"))["function_uuid"] == fid
    assert w.call("mallory", "GET", f"/v2/functions/{w.f_grp}").status_code == 404
