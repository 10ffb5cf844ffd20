"""Who is calling: the identity a bearer token belongs to."""

from __future__ import annotations

from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import unauthorized
from globus_compute.service.records import User


def identify(ctx: ServiceContext, token: str) -> User | None:
    """The identity holding ``token``, or None (replaced tokens stop working at once)."""
    return ctx.store.identities.user_for_token(token)


def authenticate(ctx: ServiceContext, token: str) -> User:
    """The identity holding ``token``.

    Raises:
        ApiError: 401 for a token no identity holds (replaced tokens stop working at once).
    """
    user = identify(ctx, token)
    if user is None:
        raise unauthorized("Invalid or unknown bearer token")
    return user
