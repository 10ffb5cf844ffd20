"""Which Compute service a Client talks to.

The reference SDK names its services by environment (``production``, ``preview``, ``local``,
...). We keep the same names and URLs so a script moves between the hosted service and the
embedded one by changing only ``environment=`` (or ``GLOBUS_SDK_ENVIRONMENT``). Two overrides,
strongest first, point a Client anywhere else: the ``base_url=`` argument, then globus-sdk's own
``GLOBUS_SDK_SERVICE_URL_COMPUTE`` variable (honoured here so both SDKs agree on the URL).

One difference: where the reference's ``local`` environment is ``http://localhost:5000``, ours
is the Unix socket of the default state dir (``http+unix://...service.sock``, see
``local_socket.py``), the same service ``globus-compute-local up`` also serves on that port.
Whoever holds a loopback port is unknown; only the state dir's owner can listen on its socket,
so the local token never goes to another user's process.

Everything is read when called, never at import.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

from globus_compute import local_socket, state_dir

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "LOCAL_ENVIRONMENT",
    "TUTORIAL_ENDPOINT_ID",
    "environment_name",
    "is_loopback_url",
    "local_service_url",
    "long_poll_default",
    "service_url",
    "web_service_url",
]

DEFAULT_ENVIRONMENT = "production"
LOCAL_ENVIRONMENT = "local"
ENVIRONMENT_VARIABLE = "GLOBUS_SDK_ENVIRONMENT"
SERVICE_URL_VARIABLE = "GLOBUS_SDK_SERVICE_URL_COMPUTE"
LONG_POLL_VARIABLE = "GLOBUS_COMPUTE_LONG_POLL"

#: The reference tutorial endpoint; the same id in every environment.
TUTORIAL_ENDPOINT_ID = "4b116d3c-1703-4f8f-9f6f-39921e5864df"

_TEST_ENVIRONMENTS = ("sandbox", "test", "integration", "staging")
_WEB_SERVICE_URLS: dict[str, str] = {
    "production": "https://compute.api.globus.org",
    "preview": "https://compute.api.preview.globus.org",
    "dev": "https://api.dev.funcx.org",
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
    if name == LOCAL_ENVIRONMENT:
        return local_service_url()
    if name not in _WEB_SERVICE_URLS:
        log.warning("Unknown environment %r; using %s", name, DEFAULT_ENVIRONMENT)
        name = DEFAULT_ENVIRONMENT
    return _WEB_SERVICE_URLS[name]


def local_service_url(directory: str | os.PathLike[str] | None = None) -> str:
    """The URL of the embedded service of a state dir (default: the default state dir)."""
    directory = directory or state_dir.default_state_dir()
    return local_socket.socket_url(state_dir.socket_path(directory))


def service_url(environment: str | None = None, base_url: str | None = None) -> str:
    """The URL a Client uses: ``base_url``, else ``$GLOBUS_SDK_SERVICE_URL_COMPUTE``, else the
    environment's URL. A trailing slash is dropped so paths join cleanly."""
    url = base_url or os.environ.get(SERVICE_URL_VARIABLE) or web_service_url(environment)
    return url.rstrip("/")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (a Unix socket, ``localhost``, 127/8 or ``::1``).

    Only a default: a Client at a loopback URL assumes the embedded service (no request budget,
    long polls) unless its ``request_budget`` / ``long_poll`` arguments or their environment
    variables say otherwise.
    """
    if local_socket.is_socket_url(url):
        return True
    host = urlsplit(url).hostname
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def long_poll_default(url: str) -> bool:
    """Whether a Client asks the service to hold result polls (``POST /v2/batch_status?wait=``).

    Only our embedded service offers it. ``$GLOBUS_COMPUTE_LONG_POLL`` (``1``/``0``) decides
    when set, so a rehearsal against the embedded service can take the hosted code paths;
    otherwise a loopback URL means yes.

    Raises:
        ValueError: The variable is set to something that is not a yes or a no.
    """
    value = os.environ.get(LONG_POLL_VARIABLE, "").strip().lower()
    if not value:
        return is_loopback_url(url)
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"${LONG_POLL_VARIABLE} must be 1 or 0, not {value!r}")
