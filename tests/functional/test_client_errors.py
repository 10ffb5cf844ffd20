"""Failures through the Client: clear exceptions, transient retries, no hidden 4xx retries."""

from __future__ import annotations

import threading

import globus_sdk
import globus_sdk.transport.requests as gsdk_transport
import pytest
import requests

from globus_compute.client import Client, request_budget, stoppable_retry
from globus_compute.client.request_budget import RequestBudget, RequestRate
from globus_compute.errors import InvalidServiceResponse, SerializationError
from tests.support.clients import BASE, make_client
from tests.support.fake_clock import FakeClock

EP = "11111111-1111-1111-1111-111111111111"
FN = "22222222-2222-2222-2222-222222222222"
TASK = "44444444-4444-4444-4444-444444444444"
TG = "55555555-5555-5555-5555-555555555555"
SUBMIT = f"{BASE}/v3/endpoints/{EP}/submit"


class RecordingTime:
    """Stands in for ``time`` inside globus-sdk's transport: records retry sleeps, skips them."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class RecordingExit(threading.Event):
    """Stands in for ``stoppable_retry.EXITING``: records the waits between tries, skips them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(0.0 if timeout is None else timeout)
        return self.is_set()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch) -> list[float]:
    """The retry waits of this module's requests (every test: none may really wait)."""
    transport_time, exiting = RecordingTime(), RecordingExit()
    monkeypatch.setattr(gsdk_transport, "time", transport_time)
    monkeypatch.setattr(stoppable_retry, "EXITING", exiting)
    yield exiting.waits
    # The waits are spent in the event, so the transport's own sleeps are all zero.
    assert set(transport_time.sleeps) <= {0.0}, transport_time.sleeps


def error_body(code: str, message: str) -> dict:
    return {"code": code, "message": message, "request_id": "req-1"}


def test_unknown_function_is_a_4xx_api_error_not_retried(rsps, client):
    rsps.get(f"{BASE}/v2/functions/{FN}", status=404, json=error_body("NOT_FOUND", "no such fn"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.get_function(FN)
    assert (info.value.http_status, info.value.code) == (404, "NOT_FOUND")
    assert info.value.message == "no such fn"
    assert info.value.request_id == "req-1"
    assert len(rsps.calls) == 1


def test_unknown_endpoint_on_submit_is_a_4xx_api_error(rsps, client):
    rsps.post(SUBMIT, status=404, json=error_body("ENDPOINT_NOT_FOUND", "unknown endpoint"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.run(1, endpoint_id=EP, function_id=FN)
    assert info.value.http_status == 404 and info.value.code == "ENDPOINT_NOT_FOUND"
    assert len(rsps.calls) == 1


def test_oversized_payload_surfaces_task_payload_too_large(rsps, client):
    rsps.post(SUBMIT, status=413, json=error_body("TASK_PAYLOAD_TOO_LARGE", "over 10 MB"))
    batch = client.create_batch()
    batch.add(FN, args=("x" * 1000,))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.batch_run(EP, batch)
    assert info.value.http_status == 413 and info.value.code == "TASK_PAYLOAD_TOO_LARGE"
    assert len(rsps.calls) == 1


def test_revoked_token_is_401_once(rsps, client, sleeps):
    rsps.get(f"{BASE}/v2/tasks/{TASK}", status=401, json=error_body("UNAUTHORIZED", "revoked"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.get_task(TASK)
    assert info.value.http_status == 401 and info.value.code == "UNAUTHORIZED"
    assert len(rsps.calls) == 1 and sleeps == []


def test_validation_error_422_is_not_retried(rsps, client):
    rsps.post(f"{BASE}/v3/functions", status=422, json={"detail": [{"msg": "bad", "loc": []}]})
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.register_source_code("def f(): pass\n", "f")
    assert info.value.http_status == 422
    assert len(rsps.calls) == 1


def test_non_serializable_argument_fails_in_caller_before_any_request(rsps, client):
    with pytest.raises(SerializationError):
        client.run((i for i in range(3)), endpoint_id=EP, function_id=FN)
    batch = client.create_batch()
    with pytest.raises(SerializationError):
        batch.add(FN, kwargs={"gen": (i for i in range(3))})
    assert len(rsps.calls) == 0


def test_rate_limited_429_honours_retry_after_then_succeeds(rsps, client, sleeps, monkeypatch):
    ours = RecordingTime()
    monkeypatch.setattr(request_budget, "time", ours)  # the Client's own wait, not globus-sdk's
    rsps.get(f"{BASE}/v2/tasks/{TASK}", status=429, headers={"Retry-After": "3"}, json={})
    rsps.get(f"{BASE}/v2/tasks/{TASK}", json={"task_id": TASK, "status": "running"})
    assert client.get_task(TASK)["status"] == "running"
    assert len(rsps.calls) == 2
    assert (ours.sleeps, sleeps) == ([3.0], [])


def test_a_429_storm_longer_than_globus_sdks_retries_is_waited_out(rsps, client, sleeps):
    """globus-sdk would give up after 5 retries; the Client resends for as long as it takes."""
    for _ in range(12):
        rsps.post(SUBMIT, status=429, headers={"Retry-After": "0"}, json={})
    rsps.post(SUBMIT, json={"request_id": "r", "task_group_id": TG, "tasks": {FN: [TASK]}})
    assert client.run(1, endpoint_id=EP, function_id=FN) == TASK
    assert len(rsps.calls) == 13 and sleeps == []


def test_a_429_drains_the_budget_so_the_resend_waits_for_retry_after(rsps, sleeps):
    clock = FakeClock()
    client = make_client(request_budget="20/10")
    assert client.request_budget is not None
    client.request_budget = RequestBudget(RequestRate(20, 10), clock=clock, wait=clock.wait)
    rsps.get(f"{BASE}/v2/tasks/{TASK}", status=429, headers={"Retry-After": "4"}, json={})
    rsps.get(f"{BASE}/v2/tasks/{TASK}", json={"task_id": TASK, "status": "running"})
    start = clock.now
    assert client.get_task(TASK)["status"] == "running"
    assert clock.now - start == pytest.approx(4.5)  # Retry-After, then one token (2/s) later
    assert client.request_budget.rate_limited == 1 and sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_with_backoff(rsps, client, sleeps, status):
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", status=status, json={})
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", status=status, json={})
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", json={"status": "online"})
    assert client.get_endpoint_status(EP) == {"status": "online"}
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] <= 0.75 and sleeps[1] <= 1.5


def test_persistent_503_gives_up_after_five_retries(rsps, client, sleeps):
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", status=503, json=error_body("DOWN", "down"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.get_endpoint_status(EP)
    assert info.value.http_status == 503
    assert len(rsps.calls) == 6 and len(sleeps) == 5
    assert max(sleeps) <= 10


def test_at_interpreter_exit_a_503_is_not_retried(rsps, sleeps):
    """Once the exit hook set ``EXITING``, a call to a failing service ends after its try."""
    client = make_client()
    stoppable_retry.EXITING.set()  # the recording stand-in, not the process's event
    rsps.get(f"{BASE}/v2/endpoints/{EP}/status", status=503, json=error_body("DOWN", "down"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.get_endpoint_status(EP)
    assert info.value.http_status == 503
    assert len(rsps.calls) == 1 and sleeps == []


def test_internal_server_error_is_not_retried(rsps, client, sleeps):
    """A 500 may follow a committed submit; retrying it could run the tasks twice."""
    rsps.post(SUBMIT, status=500, json=error_body("INTERNAL", "bug"))
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        client.run(endpoint_id=EP, function_id=FN)
    assert info.value.http_status == 500
    assert len(rsps.calls) == 1 and sleeps == []


def test_connection_error_is_retried(rsps, client, sleeps):
    rsps.get(f"{BASE}/v2/endpoints", body=requests.ConnectionError("refused"))
    rsps.get(f"{BASE}/v2/endpoints", json=[])
    assert client.get_endpoints() == []
    assert len(rsps.calls) == 2 and len(sleeps) == 1


def test_connection_error_that_persists_raises_network_error(rsps, client):
    rsps.get(f"{BASE}/v2/endpoints", body=requests.ConnectionError("refused"))
    with pytest.raises(globus_sdk.NetworkError):
        client.get_endpoints()
    assert len(rsps.calls) == 6


# -- answers the Client cannot use --------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [{"request_id": "r", "tasks": {}}, {"tasks": {FN: []}}, ["not", "an", "object"]]
)
def test_submit_answer_without_the_task_is_invalid_service_response(rsps, client, answer):
    rsps.post(SUBMIT, json=answer)
    with pytest.raises(InvalidServiceResponse, match=f"lists no task for function {FN}"):
        client.run(1, endpoint_id=EP, function_id=FN)


@pytest.mark.parametrize("answer", [{}, {"function_uuid": None}, ["x"]])
def test_register_answer_without_function_uuid_is_invalid_service_response(rsps, client, answer):
    rsps.post(f"{BASE}/v3/functions", json=answer)
    with pytest.raises(InvalidServiceResponse, match="without answering its function_uuid"):
        client.register_function(len)


# -- auth requirement errors with a GlobusApp ---------------------------------------------------


def test_gare_with_app_logs_in_and_retries_once(rsps, sleeps, tmp_path, monkeypatch):
    config = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.UserApp("t", client_id="4cf29807-cf21-49ec-9443-ff9a3fb9f81c", config=config)
    logins: list = []
    monkeypatch.setattr(app, "get_authorizer", lambda rs: globus_sdk.AccessTokenAuthorizer("t"))
    monkeypatch.setattr(app, "login", lambda auth_params: logins.append(auth_params))
    client = Client(base_url=BASE, app=app, do_version_check=False)
    gare = {
        "code": "AuthorizationRequired",
        "reason": "Session too old",
        "authorization_parameters": {"session_required_policies": ["p1"]},
    }
    rsps.get(f"{BASE}/v2/endpoints", status=403, json=gare)
    rsps.get(f"{BASE}/v2/endpoints", json=[])
    assert client.get_endpoints() == []
    assert len(rsps.calls) == 2
    [params] = logins
    assert params.session_required_policies == ["p1"]
    assert params.session_message == "Session too old"


def test_plain_403_with_app_is_not_retried(rsps, sleeps, monkeypatch):
    config = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.UserApp("t", client_id="4cf29807-cf21-49ec-9443-ff9a3fb9f81c", config=config)
    monkeypatch.setattr(app, "get_authorizer", lambda rs: globus_sdk.AccessTokenAuthorizer("t"))
    client = Client(base_url=BASE, app=app, do_version_check=False)
    rsps.get(f"{BASE}/v2/endpoints/{EP}", status=403, json=error_body("FORBIDDEN", "not yours"))
    with pytest.raises(globus_sdk.GlobusAPIError, match="not yours"):
        client.get_endpoint_metadata(EP)
    assert len(rsps.calls) == 1
