"""Strategies that carry several encodings of one object: ``12``, ``13`` and legacy ``10``.

``AllCodeStrategies`` and ``AllDataStrategies`` trade payload size for the best chance that the
endpoint can load something: portable forms first (source, JSON), dill last.

``CombinedCode`` (``10``) is the deprecated ancestor. Its layout joins ``header:payload`` pairs
with ``":"``, a character that source text also contains, so only a reader that succeeds on an
early, base64 variant gets the pairs aligned. We write it byte for byte as the reference does
(endpoints may still receive it) and read it with the same pairing rule.
"""

from __future__ import annotations

import logging
from typing import Any

from globus_compute.errors import DeserializationError, SerializationError
from globus_compute.serialize.base import (
    IDENTIFIER_LENGTH,
    ComboSerializationStrategy,
    SerializationStrategy,
    strategy_for_header,
)
from globus_compute.serialize.code import (
    DillCode,
    DillCodeSource,
    DillCodeTextInspect,
    PureSourceDill,
    PureSourceTextInspect,
)
from globus_compute.serialize.data import DillDataBase64, JSONData

log = logging.getLogger(__name__)

__all__ = ["AllCodeStrategies", "AllDataStrategies", "CombinedCode"]


class AllCodeStrategies(ComboSerializationStrategy):
    """Source (``st``, ``sd``) and dill (``01``) forms of a function, tried in that order.

    Use it when the endpoint may run another Python version: the source loads anywhere, and
    lambdas or notebook functions without retrievable source still travel as dill.
    """

    identifier = "12\n"
    for_code = True
    strategies = (PureSourceTextInspect, PureSourceDill, DillCode)


class AllDataStrategies(ComboSerializationStrategy):
    """JSON (``11``) and dill (``00``) forms of a value, tried in that order."""

    identifier = "13\n"
    for_code = False
    strategies = (JSONData, DillDataBase64)


class CombinedCode(SerializationStrategy):
    """Deprecated since 4.0 (use :class:`AllCodeStrategies`): ``:``-joined variants of a function.

    Variants, in order: ``04``, ``01``, ``03``, ``sd``, ``st``; those that fail are left out.
    """

    identifier = "10\n"
    for_code = True

    _variants: tuple[type[SerializationStrategy], ...] = (
        DillCodeSource,
        DillCode,
        DillCodeTextInspect,
        PureSourceDill,
        PureSourceTextInspect,
    )
    _variant_headers = frozenset(v.identifier for v in _variants)

    def serialize(self, data: Any) -> str:
        chunks: list[str] = []
        for variant in self._variants:
            try:
                serialized = strategy_for_header(variant.identifier).serialize(data)  # type: ignore[union-attr]
            except Exception as exc:
                log.debug("CombinedCode skipped %s: %s", variant.__name__, exc)
                continue
            chunks.append(serialized[:IDENTIFIER_LENGTH])
            chunks.append(serialized[IDENTIFIER_LENGTH:])
        if not chunks:
            raise SerializationError("No serialization methods were successful")
        return self.identifier + ":".join(chunks)

    def deserialize(self, payload: str, variation: int = 0) -> Any:
        """Load the first variant that works, or only the 1-based ``variation`` if given.

        Raises:
            DeserializationError: If a pair's header is unknown, the requested variation fails,
                or no variant loads.
        """
        parts = iter(self.chomp(payload).split(":"))
        count = 0
        for header, body in zip(parts, parts, strict=False):
            count += 1
            if variation and count != variation:
                continue
            if header not in self._variant_headers:
                raise DeserializationError(f"Invalid serialization id {header}")
            strategy = strategy_for_header(header)
            try:
                return strategy.deserialize(header + body)  # type: ignore[union-attr]
            except Exception as exc:
                if variation:
                    raise DeserializationError(
                        f"Failed to deserialize using variation #{count}"
                    ) from exc
                log.debug("CombinedCode variant %d (%r) failed: %s", count, header, exc)
        raise DeserializationError(f"Deserialization failed after {count} tries")
