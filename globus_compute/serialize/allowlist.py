"""Naming strategies: resolving "strategy-likes", reference import paths, and allow-lists.

Users and endpoint configs name a strategy as an instance, a class, or an import path string,
and the strings come from two worlds: ours (``globus_compute.serialize.JSONData``) and the
reference SDK's (``globus_compute_sdk.serialize.JSONData`` or ``...serialize.concretes.JSONData``).
Both map to the same strategy here, by class name, without importing the reference SDK.

Going the other way, :func:`reference_import_path` names a strategy the way an endpoint can
import it: endpoints run the reference SDK, so ``result_serializers`` on the wire must be
reference paths, never ours.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from enum import Enum
from typing import Any

from globus_compute.errors import SerdeError
from globus_compute.serialize.base import (
    SerializationStrategy,
    registered_strategies,
    strategy_for_header,
)
from globus_compute.serialize.combined import AllCodeStrategies  # noqa: F401  (registers 12/13/10)

log = logging.getLogger(__name__)

__all__ = [
    "AllowlistWildcard",
    "Strategylike",
    "DeserializerAllowlist",
    "resolve_strategy",
    "reference_import_path",
    "parse_allowlist",
    "SELECTABLE_STRATEGIES",
]

#: An instance, a class, or an import path of a serialization strategy.
Strategylike = SerializationStrategy | type[SerializationStrategy] | str

#: Where reference strategy classes are defined; endpoints import them from here.
REFERENCE_MODULE = "globus_compute_sdk.serialize.concretes"

_REFERENCE_PREFIX = "globus_compute_sdk."
_NAME_MODULES = frozenset(
    {
        "globus_compute_sdk.serialize",
        REFERENCE_MODULE,
        "globus_compute.serialize",
        "globus_compute",
    }
)

#: Every built-in strategy, in registration order. Classes defined later by users are not
#: "known": the wire format has no room for them, since endpoints would not recognize them.
BUILTIN_STRATEGIES: tuple[type[SerializationStrategy], ...] = tuple(
    type(s) for s in registered_strategies()
)
#: Built-in strategies that may be chosen for serializing or named in an allow-list.
SELECTABLE_STRATEGIES: tuple[type[SerializationStrategy], ...] = tuple(
    cls for cls in BUILTIN_STRATEGIES if cls.selectable
)
_BY_NAME: dict[str, type[SerializationStrategy]] = {cls.__name__: cls for cls in BUILTIN_STRATEGIES}


class AllowlistWildcard(str, Enum):
    """Allow-list entries that stand for every selectable strategy of one kind."""

    CODE = "globus_compute_sdk.*Code"
    DATA = "globus_compute_sdk.*Data"


#: Our own spellings of the wildcards, accepted as synonyms.
_WILDCARD_ALIASES = {
    "globus_compute_sdk.*Code": AllowlistWildcard.CODE,
    "globus_compute_sdk.*Data": AllowlistWildcard.DATA,
    "globus_compute.*Code": AllowlistWildcard.CODE,
    "globus_compute.*Data": AllowlistWildcard.DATA,
}

DeserializerAllowlist = Iterable[Strategylike | AllowlistWildcard]


def _bad_strategylike(value: Any) -> SerdeError:
    return SerdeError(
        f"Invalid strategy-like '{value}': give a SerializationStrategy instance or class,"
        " or the import path of one"
    )


def _class_of(value: Strategylike) -> type[SerializationStrategy]:
    """Map any accepted spelling of a strategy to our built-in class (or a user subclass)."""
    if isinstance(value, str):
        module_name, _sep, name = value.rpartition(".")
        known = _BY_NAME.get(name)
        if known is not None and (
            module_name in _NAME_MODULES or module_name.startswith("globus_compute.serialize.")
        ):
            return known
        try:
            value = getattr(importlib.import_module(module_name), name)
        except Exception as exc:
            raise _bad_strategylike(value) from exc
    cls = value if inspect.isclass(value) else type(value)
    if issubclass(cls, SerializationStrategy):
        return cls
    if cls.__module__.startswith(_REFERENCE_PREFIX) and cls.__name__ in _BY_NAME:
        # A reference SDK class or instance: same identifier, same payload, so use ours.
        return _BY_NAME[cls.__name__]
    raise _bad_strategylike(value)


def resolve_strategy(
    strategy_like: Strategylike, for_code: bool | None = None
) -> SerializationStrategy:
    """Return our shared strategy instance for any accepted spelling of a strategy.

    Args:
        strategy_like: Instance, class, or import path (ours or the reference SDK's).
        for_code: If not None, require a code (True) or data (False) strategy.

    Returns:
        The registered instance of the matching built-in strategy.

    Raises:
        SerdeError: For something that is not a strategy, a strategy of the wrong kind, or one
            that cannot be selected (user-defined, or read-only like ``PickleCode``).
    """
    cls = _class_of(strategy_like)
    if for_code is not None and cls.for_code != for_code:
        want, got = ("code", "data") if for_code else ("data", "code")
        raise SerdeError(
            f"{cls.__name__} is a {got} serialization strategy, expected a {want} strategy."
        )
    if cls not in SELECTABLE_STRATEGIES:
        raise SerdeError(f"{cls.__name__} is not a known serialization strategy.")
    return strategy_for_header(cls.identifier)  # type: ignore[return-value]


def reference_import_path(strategy_like: Strategylike) -> str:
    """The import path an endpoint (running the reference SDK) resolves to this strategy.

    Example: ``reference_import_path(JSONData)`` is
    ``"globus_compute_sdk.serialize.concretes.JSONData"``.

    Raises:
        SerdeError: As :func:`resolve_strategy`.
    """
    return f"{REFERENCE_MODULE}.{type(resolve_strategy(strategy_like)).__name__}"


def parse_allowlist(
    entries: DeserializerAllowlist | None,
) -> frozenset[type[SerializationStrategy]]:
    """Validate an allow-list and expand its wildcards.

    Args:
        entries: Strategy-likes and wildcards; falsy means "allow everything".

    Returns:
        The allowed classes; empty when everything is allowed.

    Raises:
        SerdeError: For an unknown entry, a wildcard mixed with specific strategies of the same
            kind, or a list that does not allow at least one code and one data strategy (an
            endpoint that can read no functions, or no arguments, could run nothing).
    """
    if not entries:
        return frozenset()
    entries = list(entries)
    allowed: set[type[SerializationStrategy]] = set()
    wildcards: set[AllowlistWildcard] = set()
    for entry in entries:
        wildcard = _WILDCARD_ALIASES.get(entry) if isinstance(entry, str) else None
        if wildcard is not None:
            wildcards.add(wildcard)
        else:
            allowed.add(type(resolve_strategy(entry)))
    for wildcard in wildcards:
        for_code = wildcard is AllowlistWildcard.CODE
        if any(cls.for_code == for_code for cls in allowed):
            raise SerdeError(
                f"Cannot mix '{wildcard.value}' with specific deserializers (got {entries})"
            )
        allowed.update(cls for cls in SELECTABLE_STRATEGIES if cls.for_code == for_code)
    if {cls.for_code for cls in allowed} != {True, False}:
        raise SerdeError(
            "Deserialization allowlists must contain at least one code and one data"
            f" deserializer/wildcard (got: {entries})"
        )
    return frozenset(allowed)
