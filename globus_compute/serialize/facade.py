"""``ComputeSerializer``: the one object the SDK, the Batch and the endpoint serialize through.

It chooses a strategy per object (callables use the code strategy, everything else the data
strategy), reads any registered header back, enforces an optional allow-list of deserializers
(endpoint administrators use it to refuse e.g. dill-pickled functions), and wraps strategy
failures in our error types so callers catch one thing.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable
from typing import Any

from globus_compute.errors import DeserializationError, SerializationError
from globus_compute.serialize.allowlist import (
    DeserializerAllowlist,
    Strategylike,
    parse_allowlist,
    resolve_strategy,
)
from globus_compute.serialize.base import (
    IDENTIFIER_LENGTH,
    SerializationStrategy,
    strategy_for_header,
)
from globus_compute.serialize.code import DillCode
from globus_compute.serialize.data import DillDataBase64
from globus_compute.serialize.packing import pack_buffers, unpack_buffers

log = logging.getLogger(__name__)

__all__ = ["ComputeSerializer", "DEFAULT_STRATEGY_CODE", "DEFAULT_STRATEGY_DATA"]

#: Used for functions when no code strategy is given.
DEFAULT_STRATEGY_CODE: SerializationStrategy = resolve_strategy(DillCode, for_code=True)
#: Used for everything else when no data strategy is given.
DEFAULT_STRATEGY_DATA: SerializationStrategy = resolve_strategy(DillDataBase64, for_code=False)


def _failure_group(failures: list[Exception]) -> BaseException:
    """An ExceptionGroup of every failure (Python 3.10 needs the ``exceptiongroup`` backport;
    without it, the last failure stands in)."""
    group_cls: Any = getattr(builtins, "ExceptionGroup", None)
    if group_cls is None:  # pragma: no cover - Python 3.10
        try:
            from exceptiongroup import ExceptionGroup as group_cls
        except ImportError:
            return failures[-1]
    return group_cls("Strategy failures:", failures)


#: Number of buffers in a task body as the endpoint receives it: function, args, kwargs.
TASK_BUFFER_COUNT = 3


class ComputeSerializer:
    """Serialize and deserialize values in the Globus Compute wire format.

    Args:
        strategy_code: Strategy for callables (instance, class or import path); default
            ``DillCode``.
        strategy_data: Strategy for other values; default ``DillDataBase64``.
        allowed_deserializer_types: If given, only these strategies (or wildcards such as
            ``"globus_compute_sdk.*Code"``) may be used by :meth:`deserialize`; it must allow at
            least one code and one data strategy. Falsy allows everything.

    Raises:
        SerdeError: For an unknown strategy, one of the wrong kind, or a bad allow-list.
    """

    def __init__(
        self,
        strategy_code: Strategylike | None = None,
        strategy_data: Strategylike | None = None,
        *,
        allowed_deserializer_types: DeserializerAllowlist | None = None,
    ) -> None:
        self.code_serializer: SerializationStrategy = (
            DEFAULT_STRATEGY_CODE
            if strategy_code is None
            else resolve_strategy(strategy_code, for_code=True)
        )
        self.data_serializer: SerializationStrategy = (
            DEFAULT_STRATEGY_DATA
            if strategy_data is None
            else resolve_strategy(strategy_data, for_code=False)
        )
        self.allowed_deserializer_types = parse_allowlist(allowed_deserializer_types)
        # header -> strategy, filled once the header has passed the allow-list check.
        self._readers: dict[str, SerializationStrategy] = {}

    def __repr__(self) -> str:
        return (
            f"ComputeSerializer(strategy_code={self.code_serializer!r},"
            f" strategy_data={self.data_serializer!r})"
        )

    def serialize(self, data: Any) -> str:
        """Serialize ``data`` with the code strategy if it is callable, else the data strategy.

        Raises:
            SerializationError: ``"<Code|Data> serialization strategy <Name> failed"``, chained
                from what the strategy raised.
        """
        if callable(data):
            kind, strategy = "Code", self.code_serializer
        else:
            kind, strategy = "Data", self.data_serializer
        try:
            return strategy.serialize(data)
        except Exception as exc:
            raise SerializationError(
                f"{kind} serialization strategy {type(strategy).__name__} failed"
            ) from exc

    def deserialize(self, payload: str, *, for_code: bool | None = None) -> Any:
        """Rebuild the object a serialized string stands for, whichever strategy wrote it.

        Args:
            payload: A serialized string with its strategy header.
            for_code: True if ``payload`` must be a function (a code strategy), False if it
                must be data (arguments); None accepts either. An endpoint says which, so that
                an allow-list of code strategies for functions does not also let dill-pickled
                *arguments* through under a code header.

        Raises:
            DeserializationError: For an unknown header, a strategy outside the allow-list, or
                one of the wrong kind.
            Exception: Whatever the strategy raises on a corrupt payload, unchanged, so that an
                endpoint can report e.g. the missing module by name.
        """
        header = payload[:IDENTIFIER_LENGTH]
        strategy = self._readers.get(header)
        if strategy is None:
            strategy = self._reader_for(header)
        if for_code is not None and strategy.for_code != for_code:
            what, want = ("function", "code") if for_code else ("arguments", "data")
            raise DeserializationError(
                f"The {what} buffer is serialized with {type(strategy).__name__}, which is not a "
                f"{want} serializer; the {what} must use a {want} serializer"
            )
        return strategy.deserialize(payload)

    def _reader_for(self, header: str) -> SerializationStrategy:
        """The strategy for ``header``, checked against the allow-list once, then cached."""
        strategy = strategy_for_header(header)
        if strategy is None:
            raise DeserializationError(f"Invalid header: {header} in data payload")
        self.assert_deserializer_allowed(strategy)
        self._readers[header] = strategy
        return strategy

    def assert_deserializer_allowed(self, strategy: SerializationStrategy) -> None:
        """Raise unless the allow-list (if any) permits ``strategy``.

        Raises:
            DeserializationError: Naming the refused strategy and the allowed ones.
        """
        allowed = self.allowed_deserializer_types
        if not allowed or type(strategy) in allowed:
            return
        kind = "Code" if strategy.for_code else "Data"
        what = "function" if strategy.for_code else "arguments"
        names = ", ".join(sorted(cls.__name__ for cls in allowed))
        raise DeserializationError(
            f"\n {kind} serializer {type(strategy).__name__} disabled by current configuration."
            f"\n The {what} must be serialized with one of the allowed {kind} classes:"
            f"\n\n     Allowed serializers: {names}"
        )

    @staticmethod
    def pack_buffers(buffers: Iterable[str]) -> str:
        """Frame serialized strings into one; see :func:`~.packing.pack_buffers`."""
        return pack_buffers(buffers)

    @staticmethod
    def unpack_buffers(packed_buffer: str) -> list[str]:
        """Split a packed string; see :func:`~.packing.unpack_buffers`."""
        return unpack_buffers(packed_buffer)

    def unpack_and_deserialize(self, packed_buffer: str) -> list[Any]:
        """Unpack a task body and deserialize its function, args and kwargs.

        Returns:
            ``[function, args, kwargs]``.

        Raises:
            ValueError: If the framing is broken (the :func:`unpack_buffers` messages).
            DeserializationError: If there are not exactly three buffers, the function is not
                code or the arguments are not data, or as :meth:`deserialize`.
        """
        buffers = unpack_buffers(packed_buffer)
        if len(buffers) != TASK_BUFFER_COUNT:
            raise DeserializationError(
                f"Unpack expects {TASK_BUFFER_COUNT} buffers, got {len(buffers)}"
            )
        function, args, kwargs = buffers
        return [
            self.deserialize(function, for_code=True),
            self.deserialize(args, for_code=False),
            self.deserialize(kwargs, for_code=False),
        ]

    @staticmethod
    def serialize_from_list(data: Any, strategies: Iterable[Strategylike] | None) -> str:
        """Serialize with the first strategy in ``strategies`` that works for ``data``.

        Endpoints use this for results, with the task's ``result_serializers``; entries of the
        wrong kind for ``data`` (a data strategy for a returned function) are skipped like
        failures.

        Args:
            data: The value to serialize.
            strategies: Strategy-likes in order of preference; empty means
                ``[DillDataBase64, DillCode]``.

        Raises:
            SerializationError: ``"All strategies failed."``, chained from an ExceptionGroup
                holding every failure.
        """
        wanted = list(strategies or ()) or [DEFAULT_STRATEGY_DATA, DEFAULT_STRATEGY_CODE]
        for_code = callable(data)
        failures: list[Exception] = []
        for strategy_like in wanted:
            try:
                return resolve_strategy(strategy_like, for_code=for_code).serialize(data)
            except Exception as exc:
                failures.append(exc)
        log.debug("No strategy in %s could serialize a %s", wanted, type(data).__name__)
        raise SerializationError("All strategies failed.") from _failure_group(failures)

    def check_strategies(
        self, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        """Round-trip a call through this serializer, to test strategies before submitting.

        Returns:
            ``[function, args, kwargs]`` as an endpoint would rebuild them.

        Raises:
            SerializationError: If any part fails to serialize.
            DeserializationError: If the serialized parts fail to load back.
        """
        try:
            packed = pack_buffers(
                [self.serialize(function), self.serialize(args), self.serialize(kwargs)]
            )
        except Exception as exc:
            raise SerializationError("check_strategies failed to serialize") from exc
        try:
            return self.unpack_and_deserialize(packed)
        except Exception as exc:
            raise DeserializationError("check_strategies failed to deserialize") from exc
