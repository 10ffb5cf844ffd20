"""The endpoint agent: runs tasks claimed from a Compute service on a pluggable engine.

Start one with ``python -m globus_compute.endpoint`` or :func:`run_endpoint`; embed one with
:class:`Agent` and an engine from :func:`create_engine`.

The names below resolve on first use (as ``concurrent.futures`` resolves its pool classes), so
importing a submodule loads only what that submodule needs: a worker process, which imports
:mod:`globus_compute.endpoint.execution`, never loads the agent or its HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from globus_compute.endpoint.agent import Agent
    from globus_compute.endpoint.engines import create_engine
    from globus_compute.endpoint.engines.base import Engine, EngineContext
    from globus_compute.endpoint.main import run_endpoint

__all__ = ["Agent", "Engine", "EngineContext", "create_engine", "run_endpoint"]

#: Public name -> the module that defines it.
_HOMES = {
    "Agent": "globus_compute.endpoint.agent",
    "Engine": "globus_compute.endpoint.engines.base",
    "EngineContext": "globus_compute.endpoint.engines.base",
    "create_engine": "globus_compute.endpoint.engines",
    "run_endpoint": "globus_compute.endpoint.main",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
