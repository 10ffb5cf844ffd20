"""globus_compute: run Python functions on remote computers from a concurrent.futures Executor.

Importing this package starts no thread and opens no socket.
"""

from __future__ import annotations

import logging

from globus_compute import errors
from globus_compute.batch import Batch
from globus_compute.client import Client
from globus_compute.executor import Executor
from globus_compute.future import ComputeFuture
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
from globus_compute.version import __version__

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
