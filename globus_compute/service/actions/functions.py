"""Functions: register and delete (reading one is ``lookup.visible_function``).

Function code is stored and returned verbatim: the service cannot and does not unpickle it.
"""

from __future__ import annotations

import logging
from typing import Any

from globus_compute.protocol.ids import canonical_uuid
from globus_compute.service.access import owns_function
from globus_compute.service.actions.lookup import visible_function
from globus_compute.service.context import ServiceContext
from globus_compute.service.errors import forbidden, invalid
from globus_compute.service.records import User

log = logging.getLogger(__name__)

#: Longest function name kept (the reference SDK sends ``__name__``); longer ones are refused.
MAX_NAME_CHARS = 256


def register_function(
    ctx: ServiceContext,
    user: User,
    *,
    name: str,
    code: str,
    serialized: bool = True,
    meta: dict[str, Any] | None = None,
    description: str | None = None,
    public: bool = False,
    group: str | None = None,
    ha_endpoint_id: str | None = None,
) -> str:
    """Register a function of ``user`` and return its new id.

    Args:
        group: A group id: its members may run the function too.
        ha_endpoint_id: The reference's high-assurance endpoint; such a function may be shared
            neither publicly nor with a group.

    Raises:
        ApiError: 422 for an empty or over-long name, empty code, a group that is not a UUID,
            or a high-assurance function that would be shared.
    """
    if not name:
        raise invalid("function_name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise invalid(f"function_name must be at most {MAX_NAME_CHARS} characters")
    if not code:
        raise invalid("function_code must not be empty")
    group_id = None
    if group is not None:
        group_id = canonical_uuid(group)
        if group_id is None:
            raise invalid(f"group {group!r} is not a UUID")
    if ha_endpoint_id is not None and (public or group_id):
        raise invalid("ha_endpoint_id cannot be combined with public or group")
    fid = ctx.store.functions.register_function(
        user,
        name,
        code,
        serialized=serialized,
        description=description,
        meta=meta,
        public=public,
        group_id=group_id,
    )
    log.debug("%s registered function %s (%s)", user.name, fid, name)
    return fid


def delete_function(ctx: ServiceContext, user: User, raw_id: str) -> None:
    """Delete a function; only its owner may (others who may see it get 403).

    Tasks already queued to run it still get its code when claimed.
    """
    fn = visible_function(ctx, user, raw_id)
    if not owns_function(user, fn):
        raise forbidden(f"Only the owner of function {fn.id} may delete it")
    ctx.store.functions.delete_function(fn.id)
