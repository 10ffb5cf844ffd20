"""How a Client proves who it is, chosen as the reference SDK chooses it.

In order of precedence:

1. ``authorizer=``: used as is (e.g. ``AccessTokenAuthorizer``); no login, no token storage.
2. ``app=``: a caller-built ``globus_sdk.GlobusApp``.
3. Environment ``local`` (the embedded service): the token that ``globus-compute-local up``
   wrote to ``state_dir.token_path(state_dir.default_state_dir())``, once the directory is
   checked to be the caller's alone. Globus Auth has no ``local`` environment, so a GlobusApp
   could not work there anyway.
4. ``GLOBUS_COMPUTE_CLIENT_ID`` and ``GLOBUS_COMPUTE_CLIENT_SECRET`` both set: a
   ``globus_sdk.ClientApp`` (client credentials, no prompt).
5. Otherwise a ``globus_sdk.UserApp`` (native-app login, prompts once, then refresh tokens).

Apps keep tokens where the reference SDK keeps them (``<user_dir>/storage.db``, same SQLite
namespace), so a user logged in with ``globus-compute-sdk`` is logged in here too.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import globus_sdk
from globus_sdk.scopes import AuthScopes, ComputeScopes, Scope
from globus_sdk.token_storage import SQLiteTokenStorage

from globus_compute import state_dir
from globus_compute.client import environments
from globus_compute.errors import LocalTokenMissing

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "build_auth_client",
    "build_globus_app",
    "client_credentials",
    "compute_scopes",
    "local_token_authorizer",
    "token_namespace",
    "token_storage",
    "token_storage_path",
]

#: The reference SDK's registered native-app client id.
DEFAULT_CLIENT_ID = "4cf29807-cf21-49ec-9443-ff9a3fb9f81c"
CLIENT_ID_VARIABLE = "GLOBUS_COMPUTE_CLIENT_ID"
CLIENT_SECRET_VARIABLE = "GLOBUS_COMPUTE_CLIENT_SECRET"
SCOPE_VARIABLE = "GLOBUS_COMPUTE_SCOPE"
STORAGE_FILENAME = "storage.db"


def client_credentials() -> tuple[str | None, str | None]:
    """``($GLOBUS_COMPUTE_CLIENT_ID, $GLOBUS_COMPUTE_CLIENT_SECRET)``, each None if unset."""
    return os.environ.get(CLIENT_ID_VARIABLE) or None, os.environ.get(
        CLIENT_SECRET_VARIABLE
    ) or None


def compute_scopes() -> list[Scope]:
    """The scope of the Compute token: ``$GLOBUS_COMPUTE_SCOPE``, else ``ComputeScopes.all``."""
    override = os.environ.get(SCOPE_VARIABLE)
    return [Scope.parse(override) if override else ComputeScopes.all]


def token_storage_path() -> Path:
    """``<user_dir>/storage.db``, creating the user dir (mode 0700) if needed."""
    directory = state_dir.user_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory / STORAGE_FILENAME


def token_namespace(environment: str | None = None) -> str:
    """The reference SDK's namespace: ``clientprofile/<env>/<client id>`` or ``user/<env>``."""
    env = environments.environment_name(environment)
    client_id, client_secret = client_credentials()
    if client_id and client_secret:
        return f"clientprofile/{env}/{client_id}"
    return f"user/{env}"


def token_storage(environment: str | None = None) -> SQLiteTokenStorage:
    """The shared SQLite token store; usable from the Executor's threads too."""
    return SQLiteTokenStorage(
        filepath=token_storage_path(),
        namespace=token_namespace(environment),
        connect_params={"check_same_thread": False},
    )


def build_globus_app(environment: str | None = None) -> globus_sdk.GlobusApp:
    """A ``ClientApp`` if client credentials are exported, else a ``UserApp``.

    Raises:
        ValueError: Only the secret is set; guessing the client id would log in as someone else.
    """
    client_id, client_secret = client_credentials()
    if client_secret and not client_id:
        raise ValueError(
            f"{CLIENT_SECRET_VARIABLE} is set but {CLIENT_ID_VARIABLE} is not: both must be set "
            "to use a client identity. Set both, or unset both to log in as a user."
        )
    config = globus_sdk.GlobusAppConfig(
        token_storage=token_storage(environment), request_refresh_tokens=True
    )
    if client_id and client_secret:
        return globus_sdk.ClientApp(
            platform.node(), client_id=client_id, client_secret=client_secret, config=config
        )
    return globus_sdk.UserApp(
        platform.node(), client_id=client_id or DEFAULT_CLIENT_ID, config=config
    )


def local_token_authorizer(
    directory: str | os.PathLike[str] | None = None,
) -> globus_sdk.AccessTokenAuthorizer:
    """The embedded service's default-user token as an authorizer.

    Args:
        directory: The service's state dir; defaults to ``state_dir.default_state_dir()``.

    Raises:
        LocalTokenMissing: No token file, i.e. ``globus-compute-local up`` never ran here.
        UnsafeStateDir: The token's directory or file is another user's, or others may write
            to it.
    """
    directory = directory or state_dir.default_state_dir()
    path = state_dir.token_path(directory)
    try:
        # A token that another user could have put there would make us act as them.
        state_dir.require_private_dir(path.parent)
    except FileNotFoundError:
        raise LocalTokenMissing(str(path)) from None
    token = state_dir.read_token_file(path)
    if not token:
        raise LocalTokenMissing(str(path))
    return globus_sdk.AccessTokenAuthorizer(token)


def resolve_credentials(
    environment: str,
    app: globus_sdk.GlobusApp | None,
    authorizer: globus_sdk.authorizers.GlobusAuthorizer | None,
) -> tuple[globus_sdk.GlobusApp | None, globus_sdk.authorizers.GlobusAuthorizer | None]:
    """Pick ``(app, authorizer)`` for a Client; exactly one of them is not None.

    Raises:
        ValueError: Both ``app`` and ``authorizer`` were given.
    """
    if app is not None and authorizer is not None:
        raise ValueError("'app' and 'authorizer' are mutually exclusive.")
    if app is not None or authorizer is not None:
        return app, authorizer
    if environment == environments.LOCAL_ENVIRONMENT:
        return None, local_token_authorizer()
    return build_globus_app(environment), None


def build_auth_client(
    environment: str,
    app: globus_sdk.GlobusApp | None,
    authorizer: globus_sdk.authorizers.GlobusAuthorizer | None,
) -> globus_sdk.AuthClient:
    """A Globus Auth client on a Client's credentials (the reference's ``Client.auth_client``).

    With an app it asks for the scopes the reference's auth client asks for (``openid`` and
    ``manage_projects``), which may mean one more login; with an authorizer it uses it as is.

    Raises:
        RuntimeError: Environment ``local`` without an app: Globus Auth has no ``local``
            environment, and the embedded service's token must never be sent to it.
    """
    if app is not None:
        return globus_sdk.AuthClient(
            app=app, app_scopes=[AuthScopes.openid, AuthScopes.manage_projects]
        )
    if environment == environments.LOCAL_ENVIRONMENT:
        raise RuntimeError(
            "Client.auth_client: the embedded service ('local') has no Globus Auth, and its "
            "token is not sent there. Pass app= (a globus_sdk.GlobusApp) to use Globus Auth."
        )
    return globus_sdk.AuthClient(environment=environment, authorizer=authorizer)
