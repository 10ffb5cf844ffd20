"""Authentication of the caller: the bearer token of the ``Authorization`` header.

:func:`identify_caller` looks the token up (on the database thread) and says who is calling, or
why nobody is. The limits middleware (``limits.py``) calls it before anything reads a request
body, and whenever the rate limit needs the caller's identity; it leaves the outcome in the
request's state. The route dependency :data:`CurrentUser` turns that outcome into the caller or
a 401, looking the token up itself when the middleware had no need to (a ``GET`` without a rate
limit), so requests that need no identity, like ``GET /v2/version``, never touch the database.
``HTTPBearer`` is declared only so that OpenAPI documents the scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from globus_compute.service.actions.identities import identify
from globus_compute.service.context import ServiceContext, get_ctx
from globus_compute.service.errors import unauthorized
from globus_compute.service.records import User

_bearer = HTTPBearer(auto_error=False, description="A local identity's token")


@dataclass(frozen=True)
class Authentication:
    """Who is calling (``scope["state"]["auth"]``).

    Attributes:
        user: The identity of a valid bearer token, else None.
        problem: Why there is no identity, as the 401 answer says it; None when ``user`` is set.
    """

    user: User | None
    problem: str | None


ANONYMOUS = Authentication(None, "Missing bearer token")


def bearer_token(header: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), else None."""
    if not header:
        return None
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def identify_caller(ctx: ServiceContext, header: bytes | None) -> Authentication:
    """Who sent ``header`` (the raw ``Authorization`` value, or None).

    Raises:
        StorageError: The database cannot be read.
    """
    token = bearer_token(header)
    if token is None:
        return ANONYMOUS
    user = await ctx.call(identify, token)
    if user is None:
        return Authentication(None, "Invalid or unknown bearer token")
    return Authentication(user, None)


async def current_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The identity of the bearer token; 401 when it is missing or unknown."""
    auth = getattr(request.state, "auth", None)
    if auth is None:  # the middleware did not need to know
        header = request.headers.get("authorization")
        auth = await identify_caller(get_ctx(request), header.encode("latin-1") if header else None)
        request.state.auth = auth
    if auth.user is None:
        raise unauthorized(auth.problem or "Missing bearer token")
    return auth.user


#: Route parameter type: the authenticated caller.
CurrentUser = Annotated[User, Depends(current_user)]
