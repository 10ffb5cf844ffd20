"""Authentication of the caller: the bearer token of the ``Authorization`` header.

The limits middleware (``limits.py``) looks the token up before anything reads the request body
and leaves the outcome in the request's state; the route dependency :data:`CurrentUser` turns it
into the caller, or a 401. ``HTTPBearer`` is declared only so OpenAPI documents the scheme.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from globus_compute.service.errors import unauthorized
from globus_compute.service.limits import Authentication
from globus_compute.service.records import User

_bearer = HTTPBearer(auto_error=False, description="A local identity's token")


async def current_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The identity of the bearer token; 401 when it is missing or unknown."""
    auth: Authentication = request.state.auth  # set for every HTTP request by the middleware
    if auth.user is None:
        raise unauthorized(auth.problem or "Missing bearer token")
    return auth.user


#: Route parameter type: the authenticated caller.
CurrentUser = Annotated[User, Depends(current_user)]
