"""Serialization in the Globus Compute wire format.

Values become text with a 3-character strategy header (``00\\n`` dill data, ``11\\n`` JSON,
``01\\n`` dill code, ``st\\n``/``sd\\n`` source, ...), and several values are framed into one task
body with :func:`pack_buffers`. Output matches the reference ``globus-compute-sdk`` byte for byte,
because endpoints and the hosted service run the reference deserializers.

Modules: ``packing`` (framing), ``base`` (strategy contract and header registry), ``data`` and
``code`` (single strategies), ``combined`` (multi-encoding strategies), ``allowlist`` (naming
strategies, allow-lists), ``facade`` (:class:`ComputeSerializer`).
"""

from __future__ import annotations

from globus_compute.serialize.allowlist import (
    SELECTABLE_STRATEGIES,
    AllowlistWildcard,
    DeserializerAllowlist,
    Strategylike,
    parse_allowlist,
    reference_import_path,
    resolve_strategy,
)
from globus_compute.serialize.base import (
    IDENTIFIER_LENGTH,
    ComboSerializationStrategy,
    SerializationStrategy,
)
from globus_compute.serialize.code import (
    DillCode,
    DillCodeSource,
    DillCodeTextInspect,
    PickleCode,
    PureSourceDill,
    PureSourceTextInspect,
)
from globus_compute.serialize.combined import AllCodeStrategies, AllDataStrategies, CombinedCode
from globus_compute.serialize.data import DillDataBase64, JSONData
from globus_compute.serialize.facade import (
    DEFAULT_STRATEGY_CODE,
    DEFAULT_STRATEGY_DATA,
    ComputeSerializer,
)
from globus_compute.serialize.packing import pack_buffers, unpack_buffers

__all__ = [
    "ComputeSerializer",
    "pack_buffers",
    "unpack_buffers",
    "resolve_strategy",
    "reference_import_path",
    "parse_allowlist",
    "AllowlistWildcard",
    "Strategylike",
    "DeserializerAllowlist",
    "SerializationStrategy",
    "ComboSerializationStrategy",
    "IDENTIFIER_LENGTH",
    "SELECTABLE_STRATEGIES",
    "DEFAULT_STRATEGY_CODE",
    "DEFAULT_STRATEGY_DATA",
    # Data strategies
    "DillDataBase64",
    "JSONData",
    "AllDataStrategies",
    # Code strategies
    "DillCode",
    "PureSourceTextInspect",
    "PureSourceDill",
    "AllCodeStrategies",
    "DillCodeSource",
    "DillCodeTextInspect",
    "CombinedCode",
    "PickleCode",
]
