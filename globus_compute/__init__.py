"""globus_compute: run Python functions on remote computers from a concurrent.futures Executor.

Importing this package starts no thread, opens no socket and loads almost nothing: each public
name is imported on first use (a module ``__getattr__``, as ``concurrent.futures`` resolves its
pool classes). So the embedded service, the endpoint agent and its worker processes, which live
under this package too, never load the Executor, the Client or globus-sdk.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from globus_compute.version import __version__

if TYPE_CHECKING:
    from globus_compute import errors
    from globus_compute.client import Client
    from globus_compute.client.batch import Batch
    from globus_compute.executor import Executor
    from globus_compute.executor.future import ComputeFuture
    from globus_compute.serialize import (
        AllCodeStrategies,
        AllDataStrategies,
        CombinedCode,
        ComputeSerializer,
        DillCode,
        DillCodeSource,
        DillCodeTextInspect,
        DillDataBase64,
        JSONData,
        PureSourceDill,
        PureSourceTextInspect,
    )

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "errors",
    "Batch",
    "Client",
    "Executor",
    "ComputeFuture",
    "ComputeSerializer",
    "AllCodeStrategies",
    "AllDataStrategies",
    "CombinedCode",
    "DillCode",
    "DillCodeSource",
    "DillCodeTextInspect",
    "DillDataBase64",
    "JSONData",
    "PureSourceDill",
    "PureSourceTextInspect",
]

_SERIALIZE = "globus_compute.serialize"

#: Where each lazily imported public name lives (``None``: the name is the module itself).
_HOMES: dict[str, tuple[str, str | None]] = {
    "errors": ("globus_compute.errors", None),
    "Batch": ("globus_compute.client.batch", "Batch"),
    "Client": ("globus_compute.client", "Client"),
    "Executor": ("globus_compute.executor", "Executor"),
    "ComputeFuture": ("globus_compute.executor.future", "ComputeFuture"),
    **{
        name: (_SERIALIZE, name)
        for name in (
            "ComputeSerializer",
            "AllCodeStrategies",
            "AllDataStrategies",
            "CombinedCode",
            "DillCode",
            "DillCodeSource",
            "DillCodeTextInspect",
            "DillDataBase64",
            "JSONData",
            "PureSourceDill",
            "PureSourceTextInspect",
        )
    },
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = home
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
