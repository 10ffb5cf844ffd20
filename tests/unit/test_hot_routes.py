"""Which requests the hot routes serve themselves and which they hand to FastAPI.

The answers they give are compared with FastAPI's over real HTTP in
``tests/integration/test_hot_routes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from globus_compute.protocol.agent import AGENT_PREFIX
from globus_compute.service.auth import ANONYMOUS, Authentication
from globus_compute.service.config import ServiceConfig
from globus_compute.service.context import ServiceContext
from globus_compute.service.hot_routes import HotRoutes
from globus_compute.service.notify import Notifier
from globus_compute.service.store import Store

pytestmark = pytest.mark.timeout(60)

# Fixed, not random: it is part of the test ids, which every xdist worker must collect alike.
EID = "3f2a1c9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    config = ServiceConfig(state_dir=tmp_path / "state")
    store = Store(config.state_dir)
    yield ServiceContext(config=config, store=store, notifier=Notifier())
    store.close()


def _serve(ctx: ServiceContext, method: str, path: str, query: bytes, auth: Any) -> tuple[Any, Any]:
    """(what reached the inner app, the status the hot routes sent) for one request."""
    passed: list[str] = []
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": orjson.dumps({"task_ids": []}), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
        "state": {"auth": auth, "request_id": "r"},
    }

    asyncio.run(HotRoutes(inner, ctx)(scope, receive, send))
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    return passed, status


def _caller(ctx: ServiceContext) -> Authentication:
    ctx.store.identities.ensure_user("alice")
    user = ctx.store.identities.get_user("alice")
    assert user is not None
    return Authentication(user, None)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/v2/batch_status", b""),
        ("POST", "/v2/batch_status", b"wait=0"),
        ("POST", "/v2/batch_status", b"wait=1.5"),
        ("POST", f"/v3/endpoints/{EID}/submit", b""),
        ("POST", f"{AGENT_PREFIX}/{EID}/claim", b""),
        ("POST", f"{AGENT_PREFIX}/{EID}/results", b""),
    ],
)
def test_the_hot_requests_never_reach_fastapi(ctx: ServiceContext, method, path, query):
    passed, status = _serve(ctx, method, path, query, _caller(ctx))
    assert passed == [] and status is not None


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/v2/batch_status", b""),  # FastAPI answers 405
        ("POST", "/v2/batch_status", b"wait=-1"),  # FastAPI's validation error
        ("POST", "/v2/batch_status", b"wait=1&x=2"),
        ("POST", "/v2/batch_status/", b""),
        ("POST", "/v3/endpoints//submit", b""),
        ("POST", f"/v3/endpoints/{EID}/submit/", b""),
        ("POST", f"/v3/endpoints/{EID}/submit", b"x=1"),
        ("POST", f"{AGENT_PREFIX}/{EID}/heartbeat", b""),
        ("POST", f"{AGENT_PREFIX}//claim", b""),
        ("POST", "/v3/functions", b""),
    ],
)
def test_everything_else_goes_on_to_fastapi(ctx: ServiceContext, method, path, query):
    assert _serve(ctx, method, path, query, _caller(ctx)) == ([path], None)


def test_a_caller_without_identity_goes_on_to_fastapi(ctx: ServiceContext):
    # The limits middleware refuses such a POST first; if it ever did not, FastAPI's 401 applies.
    assert _serve(ctx, "POST", "/v2/batch_status", b"", ANONYMOUS) == (["/v2/batch_status"], None)
    assert _serve(ctx, "POST", "/v2/batch_status", b"", None) == (["/v2/batch_status"], None)
