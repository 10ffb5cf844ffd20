"""Environment names, service URLs and the loopback test the Executor relies on."""

from __future__ import annotations

import pytest

from globus_compute.client import environments


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)
    monkeypatch.delenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", raising=False)


@pytest.mark.parametrize(
    ("name", "url"),
    [
        (None, "https://compute.api.globus.org"),
        ("production", "https://compute.api.globus.org"),
        ("preview", "https://compute.api.preview.globus.org"),
        ("dev", "https://api.dev.funcx.org"),
        ("local", "http://localhost:5000"),
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
    assert environments.service_url() == "http://localhost:5000"


def test_service_url_precedence(monkeypatch):
    assert environments.service_url("local") == "http://localhost:5000"
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", "http://127.0.0.1:9999/")
    assert environments.service_url("local") == "http://127.0.0.1:9999"
    assert environments.service_url("local", "http://h:1") == "http://h:1"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:5000", True),
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
