"""Environment names, service URLs and the loopback test the Executor relies on."""

from __future__ import annotations

import pytest

from globus_compute.client import environments

#: The local environment's URL for the user dir of the ``clean_env`` fixture.
LOCAL_URL = "http+unix://%2Fgc-user%2Flocal%2Fservice.sock"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)
    monkeypatch.delenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", raising=False)
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", "/gc-user")


@pytest.mark.parametrize(
    ("name", "url"),
    [
        (None, "https://compute.api.globus.org"),
        ("production", "https://compute.api.globus.org"),
        ("preview", "https://compute.api.preview.globus.org"),
        ("dev", "https://api.dev.funcx.org"),
        ("local", LOCAL_URL),
        ("sandbox", "https://compute.api.sandbox.globuscs.info"),
        ("staging", "https://compute.api.staging.globuscs.info"),
    ],
)
def test_web_service_url_per_environment(name, url):
    assert environments.web_service_url(name) == url


def test_unknown_environment_falls_back_to_production_with_a_log(caplog):
    assert environments.web_service_url("prodution") == "https://compute.api.globus.org"
    assert "Unknown environment 'prodution'" in caplog.text


def test_environment_variable_is_read_when_called(monkeypatch):
    assert environments.environment_name() == "production"
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "local")
    assert environments.environment_name() == "local"
    assert environments.environment_name("preview") == "preview"
    assert environments.service_url() == LOCAL_URL


def test_local_environment_is_the_default_state_dirs_socket():
    """Regression (issue 15): the local environment was http://localhost:5000, a port another
    local user could listen on first and receive the local token."""
    assert environments.web_service_url("local") == LOCAL_URL
    assert environments.local_service_url("/elsewhere") == (
        "http+unix://%2Felsewhere%2Fservice.sock"
    )


def test_service_url_precedence(monkeypatch):
    assert environments.service_url("local") == LOCAL_URL
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", "http://127.0.0.1:9999/")
    assert environments.service_url("local") == "http://127.0.0.1:9999"
    assert environments.service_url("local", "http://h:1") == "http://h:1"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:5000", True),
        (LOCAL_URL, True),
        ("http://127.0.0.1:43121", True),
        ("http://127.8.9.10", True),
        ("http://[::1]:8000/v2", True),
        ("http://api.localhost", True),
        ("https://compute.api.globus.org", False),
        ("http://10.0.0.1:5000", False),
        ("http://localhost.example.com", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_is_loopback_url(url, loopback):
    assert environments.is_loopback_url(url) is loopback
