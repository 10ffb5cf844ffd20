"""Authentication of the caller: the bearer token of the ``Authorization`` header.

The route dependency :data:`CurrentUser` reads the header (HTTP only) and hands the token to
:func:`~globus_compute.service.actions.identities.authenticate`, which decides who it belongs to.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from globus_compute.service.actions.identities import authenticate
from globus_compute.service.context import get_ctx
from globus_compute.service.errors import unauthorized
from globus_compute.service.records import User

_bearer = HTTPBearer(auto_error=False, description="A local identity's token")


def current_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The identity of the bearer token; 401 when it is missing or unknown."""
    if creds is None or not creds.credentials:
        raise unauthorized("Missing bearer token")
    return authenticate(get_ctx(request), creds.credentials)


#: Route parameter type: the authenticated caller.
CurrentUser = Annotated[User, Depends(current_user)]
