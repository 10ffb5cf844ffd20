"""Which credentials a Client builds, per mode; no network anywhere."""

from __future__ import annotations

import globus_sdk
import pytest
import responses
from globus_sdk.scopes import ComputeScopes
from globus_sdk.token_storage import SQLiteTokenStorage

from globus_compute import errors, state_dir
from globus_compute.client import Client, auth, environments

CLIENT_ID = "b0500dab-ebd4-430f-b962-0c85bd43bdbb"
COMPUTE_RS = "funcx_service"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private user dir, and none of the variables that change the choice."""
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(tmp_path / "gc"))
    for name in (
        "GLOBUS_COMPUTE_CLIENT_ID",
        "GLOBUS_COMPUTE_CLIENT_SECRET",
        "GLOBUS_COMPUTE_SCOPE",
        "GLOBUS_SDK_ENVIRONMENT",
        "GLOBUS_SDK_SERVICE_URL_COMPUTE",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "gc"


def make(**kwargs) -> Client:
    return Client(do_version_check=False, **kwargs)


def compute_scopes(client: Client) -> set[str]:
    # Both globus-sdk clients (v2, v3) register the requirement, so it may be listed twice.
    return {str(scope) for scope in client.app.scope_requirements[COMPUTE_RS]}


def test_default_is_user_app_with_reference_client_id_and_storage(isolated):
    client = make()
    assert type(client.app) is globus_sdk.UserApp
    assert client.authorizer is None
    assert client.app.client_id == auth.DEFAULT_CLIENT_ID
    storage = client.app.token_storage.token_storage  # inside globus-sdk's validating wrapper
    assert isinstance(storage, SQLiteTokenStorage)
    assert storage.namespace == "user/production"
    assert (isolated / "storage.db").exists()
    assert (isolated.stat().st_mode & 0o777) == 0o700
    assert client.app.config.request_refresh_tokens is True
    assert compute_scopes(client) == {str(ComputeScopes.all)}
    assert client.service_url == "https://compute.api.globus.org"


def test_user_app_namespace_follows_environment(isolated):
    client = make(environment="preview")
    assert client.app.token_storage.token_storage.namespace == "user/preview"
    assert client.service_url == "https://compute.api.preview.globus.org"


def test_client_credentials_build_a_client_app(monkeypatch):
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "s3cret")
    client = make()
    assert type(client.app) is globus_sdk.ClientApp
    assert client.app.client_id == CLIENT_ID
    assert (
        client.app.token_storage.token_storage.namespace == f"clientprofile/production/{CLIENT_ID}"
    )


def test_only_secret_set_is_a_clear_value_error(monkeypatch):
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "s3cret")
    with pytest.raises(ValueError, match="GLOBUS_COMPUTE_CLIENT_ID"):
        make()


def test_only_client_id_set_is_a_user_app_with_that_id(monkeypatch):
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_ID", CLIENT_ID)
    client = make()
    assert type(client.app) is globus_sdk.UserApp
    assert client.app.client_id == CLIENT_ID


def test_scope_override(monkeypatch):
    custom = "https://auth.globus.org/scopes/00000000-0000-0000-0000-000000000000/all"
    monkeypatch.setenv("GLOBUS_COMPUTE_SCOPE", custom)
    client = make()
    assert compute_scopes(client) == {custom}


def test_custom_app_is_used_as_given():
    config = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.UserApp("MyNativeApp", client_id=CLIENT_ID, config=config)
    client = make(app=app)
    assert client.app is app and client.authorizer is None
    assert compute_scopes(client) == {str(ComputeScopes.all)}


def test_app_and_authorizer_are_mutually_exclusive():
    config = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.UserApp("x", client_id=CLIENT_ID, config=config)
    with pytest.raises(ValueError, match="mutually exclusive"):
        make(app=app, authorizer=globus_sdk.AccessTokenAuthorizer("t"))


def test_authorizer_header_reaches_the_service():
    with responses.RequestsMock() as rsps:
        rsps.get("http://svc:1/v2/version", json={"min_sdk_version": "1", "min_ep_version": "1"})
        client = Client(base_url="http://svc:1", authorizer=globus_sdk.AccessTokenAuthorizer("abc"))
        assert client.app is None
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer abc"


def test_local_environment_uses_the_local_token_file(isolated):
    state_dir.write_token_file(state_dir.token_path(state_dir.default_state_dir()), "local-tok")
    client = make(environment="local")
    assert client.app is None
    assert isinstance(client.authorizer, globus_sdk.AccessTokenAuthorizer)
    assert client.authorizer.get_authorization_header() == "Bearer local-tok"
    assert client.service_url == environments.local_service_url(state_dir.default_state_dir())


def test_local_via_environment_variable_and_url_override(monkeypatch, isolated):
    state_dir.write_token_file(state_dir.token_path(state_dir.default_state_dir()), "tok2")
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "local")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", "http://127.0.0.1:4321")
    client = make()
    assert client.authorizer.get_authorization_header() == "Bearer tok2"
    assert client.service_url == "http://127.0.0.1:4321"
    assert make(local_compute_services=True, base_url="http://h:2").service_url == "http://h:2"


def test_local_without_token_says_how_to_start_the_service(isolated):
    with pytest.raises(errors.LocalTokenMissing, match="globus-compute-local up") as info:
        make(environment="local")
    assert isinstance(info.value, FileNotFoundError)
    assert str(state_dir.default_state_dir()) in str(info.value)


def test_logout_with_app_delegates_to_the_app(monkeypatch):
    client = make()
    calls: list[bool] = []
    monkeypatch.setattr(client.app, "logout", lambda: calls.append(True))
    client.logout()
    assert calls == [True]


def test_auth_client_is_built_once_on_the_app_with_the_reference_scopes():
    config = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.UserApp("x", client_id=CLIENT_ID, config=config)
    client = make(app=app)
    with pytest.warns(DeprecationWarning, match="auth_client"):
        first = client.auth_client
    assert isinstance(first, globus_sdk.AuthClient)
    with pytest.warns(DeprecationWarning):
        assert client.auth_client is first
    auth_scopes = {str(s) for s in app.scope_requirements[globus_sdk.AuthClient.resource_server]}
    assert {"openid", "urn:globus:auth:scope:auth.globus.org:manage_projects"} <= auth_scopes


def test_auth_client_with_an_authorizer_uses_it_and_can_be_replaced():
    authorizer = globus_sdk.AccessTokenAuthorizer("abc")
    client = make(authorizer=authorizer)
    with pytest.warns(DeprecationWarning):
        built = client.auth_client
    assert built.authorizer is authorizer
    other = globus_sdk.AuthClient()
    client.auth_client = other
    with pytest.warns(DeprecationWarning):
        assert client.auth_client is other


def test_auth_client_refuses_to_send_the_local_token_to_globus_auth(isolated):
    state_dir.write_token_file(state_dir.token_path(state_dir.default_state_dir()), "local-tok")
    client = make(environment="local")
    with pytest.warns(DeprecationWarning), pytest.raises(RuntimeError, match="no Globus Auth"):
        _ = client.auth_client
