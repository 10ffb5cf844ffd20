"""The one UUID parser: every id that crosses the wire is a canonical lowercase UUID string.

The service accepts ids in any case and with or without hyphens (as ``uuid.UUID`` does) and
answers with the canonical form; the SDK canonicalises what a user passes before any request.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["UuidLike", "as_uuid", "canonical_uuid", "optional_uuid", "require_uuid"]

UuidLike = uuid.UUID | str

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: object) -> str | None:
    """``value`` as a canonical lowercase UUID string, or None if it is not a UUID.

    Accepts a ``uuid.UUID`` or a string ``uuid.UUID`` would parse; the common case, an id the
    service handed out, skips the parse.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    if len(value) == 36 and _CANONICAL.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def require_uuid(value: object, name: str) -> str:
    """``canonical_uuid(value)``, or a ``ValueError`` naming the argument.

    Raises:
        ValueError: ``value`` is not a UUID.
    """
    parsed = canonical_uuid(value)
    if parsed is None:
        raise ValueError(_bad_uuid(value, name))
    return parsed


def as_uuid(value: object, name: str) -> uuid.UUID:
    """``value`` as a ``uuid.UUID``: a UUID as it is, a string parsed once.

    Raises:
        ValueError: ``value`` is not a UUID (the message names the argument).
    """
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValueError(_bad_uuid(value, name))


def optional_uuid(value: object, name: str) -> uuid.UUID | None:
    """``value`` as a ``uuid.UUID`` (None stays None).

    Raises:
        ValueError: ``value`` is neither None nor a UUID.
    """
    return None if value is None else as_uuid(value, name)


def _bad_uuid(value: object, name: str) -> str:
    return f"{name}: badly formed hexadecimal UUID string: {value!r}"
