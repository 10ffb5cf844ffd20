"""Which Compute service a Client talks to.

The reference SDK names its services by environment (``production``, ``preview``, ``local``,
...). We keep the same names and URLs so a script moves between the hosted service and the
embedded one by changing only ``environment=`` (or ``GLOBUS_SDK_ENVIRONMENT``). Two overrides,
strongest first, point a Client anywhere else: the ``base_url=`` argument, then globus-sdk's own
``GLOBUS_SDK_SERVICE_URL_COMPUTE`` variable (honoured here so both SDKs agree on the URL).

Everything is read when called, never at import.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "LOCAL_ENVIRONMENT",
    "TUTORIAL_ENDPOINT_ID",
    "environment_name",
    "is_loopback_url",
    "service_url",
    "web_service_url",
]

DEFAULT_ENVIRONMENT = "production"
LOCAL_ENVIRONMENT = "local"
ENVIRONMENT_VARIABLE = "GLOBUS_SDK_ENVIRONMENT"
SERVICE_URL_VARIABLE = "GLOBUS_SDK_SERVICE_URL_COMPUTE"

#: The reference tutorial endpoint; the same id in every environment.
TUTORIAL_ENDPOINT_ID = "4b116d3c-1703-4f8f-9f6f-39921e5864df"

_TEST_ENVIRONMENTS = ("sandbox", "test", "integration", "staging")
_WEB_SERVICE_URLS: dict[str, str] = {
    "production": "https://compute.api.globus.org",
    "preview": "https://compute.api.preview.globus.org",
    "dev": "https://api.dev.funcx.org",
    LOCAL_ENVIRONMENT: "http://localhost:5000",
    **{env: f"https://compute.api.{env}.globuscs.info" for env in _TEST_ENVIRONMENTS},
}


def environment_name(environment: str | None = None) -> str:
    """The environment in force: the argument, else ``$GLOBUS_SDK_ENVIRONMENT``, else production."""
    return environment or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT


def web_service_url(environment: str | None = None) -> str:
    """The Compute REST base URL of a named environment.

    Unknown names fall back to production, as in the reference SDK; we log it because a typo
    here would otherwise silently send work to the hosted service.
    """
    name = environment_name(environment)
    if name not in _WEB_SERVICE_URLS:
        log.warning("Unknown environment %r; using %s", name, DEFAULT_ENVIRONMENT)
        name = DEFAULT_ENVIRONMENT
    return _WEB_SERVICE_URLS[name]


def service_url(environment: str | None = None, base_url: str | None = None) -> str:
    """The URL a Client uses: ``base_url``, else ``$GLOBUS_SDK_SERVICE_URL_COMPUTE``, else the
    environment's URL. A trailing slash is dropped so paths join cleanly."""
    url = base_url or os.environ.get(SERVICE_URL_VARIABLE) or web_service_url(environment)
    return url.rstrip("/")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, 127.0.0.0/8 or ``::1``).

    The Executor uses this to skip the hosted service's client-side rate limiting when it talks
    to the embedded service, which has no such limit to respect.
    """
    host = urlsplit(url).hostname
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
