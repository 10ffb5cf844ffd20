"""The strategy contract, the identifier registry, and the "try every strategy" combinator.

Every serialized string starts with a 3-character header (two identifier characters and a
newline) naming the strategy that wrote it. The header is all a reader has to pick a decoder, so
the mapping from header to strategy is global and fixed: each concrete strategy registers one
shared instance under its identifier when its class is defined, and a second class claiming the
same identifier is a programming error caught at import time.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from globus_compute.errors import DeserializationError, SerializationError
from globus_compute.serialize.packing import pack_buffers, unpack_buffers

log = logging.getLogger(__name__)

__all__ = [
    "IDENTIFIER_LENGTH",
    "SerializationStrategy",
    "ComboSerializationStrategy",
    "strategy_for_header",
    "registered_strategies",
]

#: Two identifier characters plus the trailing newline.
IDENTIFIER_LENGTH = 3

_REGISTRY: dict[str, SerializationStrategy] = {}


class SerializationStrategy(ABC):
    """Turns one kind of Python object (callables, or everything else) into text and back.

    Subclasses set ``identifier`` and ``for_code``; defining the class registers a shared
    instance, because strategies hold no state and readers look them up by header.

    Attributes:
        identifier: The 3-character header, e.g. ``"00\\n"``; fixed by the wire format.
        for_code: True for strategies that serialize callables (functions), False for data.
        selectable: False for strategies kept only so old payloads can still be read; those
            cannot be chosen for serializing nor named in an allow-list.
    """

    identifier: ClassVar[str]
    for_code: ClassVar[bool]
    selectable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        identifier = cls.__dict__.get("identifier")
        if identifier is None:
            return  # an abstract intermediate class
        if len(identifier) != IDENTIFIER_LENGTH or not identifier.endswith("\n"):
            raise ValueError(
                f"Identifier {identifier!r} of {cls.__name__} must be two characters and a newline"
            )
        existing = _REGISTRY.get(identifier)
        if existing is not None:
            raise ValueError(
                f"Identifier {identifier!r} is already used by {type(existing).__name__}"
            )
        _REGISTRY[identifier] = cls()

    @abstractmethod
    def serialize(self, data: Any) -> str:
        """Return ``identifier`` followed by this strategy's text form of ``data``.

        Raises:
            Exception: Whatever the underlying encoder raises; ``ComputeSerializer`` wraps it.
        """

    @abstractmethod
    def deserialize(self, payload: str) -> Any:
        """Rebuild the object from a string this strategy (or the reference's) produced.

        Raises:
            DeserializationError: If the payload does not carry this strategy's header.
        """

    def chomp(self, payload: str) -> str:
        """Strip this strategy's header from ``payload``.

        Raises:
            DeserializationError: If the payload starts with a different header, which means a
                caller routed it to the wrong strategy.
        """
        if payload[:IDENTIFIER_LENGTH] != self.identifier:
            raise DeserializationError(f"Buffer does not start with identifier:{self.identifier}")
        return payload[IDENTIFIER_LENGTH:]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def strategy_for_header(header: str) -> SerializationStrategy | None:
    """Return the registered strategy for a 3-character header, or None if unknown."""
    return _REGISTRY.get(header)


def registered_strategies() -> list[SerializationStrategy]:
    """All registered strategy instances, in definition order."""
    return list(_REGISTRY.values())


class ComboSerializationStrategy(SerializationStrategy):
    """Serialize with several strategies at once so the reader can use whichever works.

    The payload is ``identifier + pack_buffers(results)`` where each result keeps its own header.
    Writers skip strategies that fail (a lambda has no source; a set is not JSON); readers try
    the sub-payloads in order, which lets a portable form (source, JSON) win where it loads and
    a dill form rescue the rest.
    """

    strategies: ClassVar[tuple[type[SerializationStrategy], ...]]

    def serialize(self, data: Any) -> str:
        buffers: list[str] = []
        errors: list[str] = []
        for strategy_cls in self.strategies:
            strategy = _REGISTRY[strategy_cls.identifier]
            try:
                buffers.append(strategy.serialize(data))
            except Exception as exc:
                errors.append(f"{strategy_cls.__name__}: {exc}")
                log.debug("%s skipped %s: %s", type(self).__name__, strategy_cls.__name__, exc)
        if not buffers:
            listed = "\n* ".join(errors) if errors else "unknown"
            raise SerializationError(f"\n\nSerialization errors:\n* {listed}")
        return self.identifier + pack_buffers(buffers)

    def deserialize(self, payload: str) -> Any:
        errors: list[str] = []
        for buffer in unpack_buffers(self.chomp(payload)):
            if "\n" not in buffer:
                shown = buffer[:50] + ("..." if len(buffer) > 50 else "")
                errors.append(f"Malformed data (no newline separator): {shown}")
                continue
            header = buffer[: buffer.index("\n") + 1]
            strategy = _REGISTRY.get(header)
            if strategy is None:
                errors.append(f"Invalid strategy identifier: {header[:-1]}")
                continue
            try:
                return strategy.deserialize(buffer)
            except Exception as exc:
                errors.append(f"{type(strategy).__name__}: {exc}")
                log.debug("%s could not use %s: %s", type(self).__name__, header[:-1], exc)
        listed = "\n* ".join(errors) if errors else "unknown"
        raise DeserializationError(f"\n\nDeserialization errors:\n* {listed}")
