"""The REST layer under ``Client``: globus-sdk's Compute clients, and the bodies we send them.

Retries of transient failures live in globus-sdk's transport (``RetryConfig``): connection
errors, 502, 503 and 504, up to 5 times with jittered exponential backoff capped at 10 s. A 429
is *not* retried there: five retries end in a failed call however long the rate limit lasts, so
``Client._request`` handles it instead (``request_budget``). A 500 is not retried: from a
Compute service it means a bug, and a retried submit could run its tasks twice. 4xx answers are
never retried, except globus-sdk's single retry of a 401 after a token refresh, which only
authorizers that can refresh take. The waits between tries end, and no retry follows, once the
interpreter is exiting (``stoppable_retry``): an Executor whose service is gone lets the process
exit within about one request timeout.

Request bodies keep the reference SDK's key order and presence rules, so the bytes on the wire
match what ``globus-compute-sdk`` sends (``meta.sdk_version`` is the reference version).
"""

from __future__ import annotations

import inspect
import logging
import platform
import re
import warnings
from collections.abc import Callable
from typing import Any

import globus_sdk
from globus_sdk.transport import RetryConfig

from globus_compute import local_socket
from globus_compute.client import auth
from globus_compute.client.stoppable_retry import stoppable_retry_config
from globus_compute.errors import VersionMismatch
from globus_compute.protocol.ids import UuidLike, require_uuid
from globus_compute.version import REFERENCE_SDK_VERSION, __version__

log = logging.getLogger(__name__)

#: Appended by globus-sdk to its own ``globus-sdk-py-<v>`` segment. The service splits the
#: User-Agent on ``/`` and reads the ``globus-compute-sdk-<v>`` segment as the SDK version.
USER_AGENT = f"globus-compute-{__version__}/globus-compute-sdk-{REFERENCE_SDK_VERSION}"

#: Statuses retried by the transport (globus-sdk's defaults, less 500 and 429; see the module
#: doc).
TRANSIENT_STATUS_CODES = (502, 503, 504)


#: Statuses whose ``Retry-After`` the transport honours (its default, less 429: globus-sdk
#: retries any status listed here, transient or not).
RETRY_AFTER_STATUS_CODES = (503,)


def retry_config() -> RetryConfig:
    """A fresh config per globus-sdk client (each registers its own checks on it), whose
    retries end at interpreter exit."""
    return stoppable_retry_config(
        transient_error_status_codes=TRANSIENT_STATUS_CODES,
        retry_after_status_codes=RETRY_AFTER_STATUS_CODES,
    )


class ComputeWebClient:
    """globus-sdk's v2 and v3 Compute clients, sharing URL, credentials and user agent.

    An ``http+unix://`` URL (the embedded service's socket) gets the socket adapter mounted on
    both clients' sessions; everything else about the requests stays globus-sdk's.
    """

    def __init__(
        self,
        base_url: str,
        app: globus_sdk.GlobusApp | None,
        authorizer: globus_sdk.authorizers.GlobusAuthorizer | None,
    ) -> None:
        creds: dict[str, Any] = (
            {"app": app, "app_scopes": auth.compute_scopes()} if app else {"authorizer": authorizer}
        )
        common = {"base_url": base_url, "app_name": USER_AGENT, **creds}
        self.v2 = globus_sdk.ComputeClientV2(retry_config=retry_config(), **common)
        self.v3 = globus_sdk.ComputeClientV3(retry_config=retry_config(), **common)
        if local_socket.is_socket_url(base_url):
            for client in (self.v2, self.v3):
                local_socket.mount(client.transport.session)

    def close(self) -> None:
        self.v2.close()
        self.v3.close()


def _release(version: str) -> tuple[tuple[int, ...], bool] | None:
    """``(release numbers padded to 3, is a dev build)``, or None if unreadable."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)(.*)", str(version))
    if not match:
        return None
    release = tuple(int(part) for part in match.group(1).split("."))
    return release + (0,) * (3 - len(release)), "dev" in match.group(2)


def require_version(current: str, minimum: str | None, package: str) -> None:
    """Raise VersionMismatch if ``current`` is older than the service's ``minimum``.

    Development builds are never blocked, nor is a release whose minimum is a dev build of that
    same release (the reference SDK's rules). An unreadable version skips the check: refusing
    to work over a version string the service made up would help no one.
    """
    have, need = _release(current), _release(minimum) if minimum else None
    if have is None or need is None:
        log.debug("Skipping the %s version check (%r vs %r)", package, current, minimum)
        return
    if have[1] or (need[1] and need[0] == have[0]) or have[0] >= need[0]:
        return
    raise VersionMismatch(
        f"Your version={current} is lower than the minimum version for {package}: {minimum}. "
        f" Please update. pip install {package}>={minimum}"
    )


def warn_ha(data: Any) -> None:
    """Show a high-assurance notice from the service as a UserWarning."""
    if isinstance(data, dict) and data.get("ha_warning"):
        warnings.warn(str(data["ha_warning"]), UserWarning, stacklevel=3)


def function_meta(**extra: str) -> dict[str, str]:
    """The registration ``meta``: our Python, the reference SDK version, falsy entries dropped."""
    meta = {"python_version": platform.python_version(), "sdk_version": REFERENCE_SDK_VERSION}
    return {k: v for k, v in {**meta, **extra}.items() if v}


def docstring(function: Callable[..., Any]) -> str | None:
    return inspect.getdoc(function)


def function_registration(
    name: str,
    code: str,
    *,
    serialized: bool,
    meta: dict[str, Any],
    description: str | None = None,
    public: bool = False,
    group: UuidLike | None = None,
    ha_endpoint_id: UuidLike | None = None,
) -> dict[str, Any]:
    """The ``POST /v3/functions`` body.

    Raises:
        ValueError: ``ha_endpoint_id`` with ``public`` or ``group`` (HA functions are never
            shared), or a malformed UUID.
    """
    if ha_endpoint_id and (public or group):
        raise ValueError("`ha_endpoint_id` is mutually exclusive with `public` and `group`")
    body: dict[str, Any] = {
        "function_name": name,
        "function_code": code,
        "serialized": serialized,
        "meta": meta,
    }
    if description:
        body["description"] = description
    if public:
        body["public"] = True
    if group:
        body["group"] = require_uuid(group, "group")
    if ha_endpoint_id:
        body["ha_endpoint_id"] = require_uuid(ha_endpoint_id, "ha_endpoint_id")
    return body


def endpoint_registration(
    name: str,
    *,
    metadata: dict[str, Any] | None = None,
    multi_user: bool | None = None,
    display_name: str | None = None,
    allowed_functions: list[UuidLike] | None = None,
    auth_policy: UuidLike | None = None,
    subscription_id: UuidLike | None = None,
    public: bool | None = None,
    high_assurance: bool | None = None,
    admins: list[UuidLike] | tuple[UuidLike, ...] | None = None,
) -> dict[str, Any]:
    """The ``POST /v3/endpoints`` (or ``PUT``) body; only what was given is sent."""
    fields: dict[str, Any] = {
        "display_name": display_name,
        "multi_user": multi_user or None,
        "metadata": metadata or None,
        "allowed_functions": [str(f) for f in allowed_functions] if allowed_functions else None,
        "authentication_policy": str(auth_policy) if auth_policy else None,
        "subscription_uuid": str(subscription_id) if subscription_id else None,
        "public": public,
        "high_assurance": high_assurance,
        "admins": [str(a) for a in admins] if admins else None,
    }
    return {"endpoint_name": name, **{k: v for k, v in fields.items() if v is not None}}
