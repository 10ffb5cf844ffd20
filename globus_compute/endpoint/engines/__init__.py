"""Engines run claimed tasks for the agent; pick one by name with :func:`create_engine`.

To add an engine, subclass :class:`~globus_compute.endpoint.engines.base.Engine` in its own
module and add its factory to :data:`ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable

from globus_compute.endpoint.engines.base import Engine, EngineContext, ResultSink
from globus_compute.endpoint.engines.process import ProcessEngine
from globus_compute.endpoint.engines.thread import ThreadEngine

__all__ = [
    "ENGINES",
    "Engine",
    "EngineContext",
    "ProcessEngine",
    "ResultSink",
    "ThreadEngine",
    "create_engine",
]

#: Engine name -> factory taking the worker count.
ENGINES: dict[str, Callable[[int | None], Engine]] = {
    ProcessEngine.name: ProcessEngine,
    ThreadEngine.name: ThreadEngine,
}


def create_engine(name: str, workers: int | None = None) -> Engine:
    """Build the engine called ``name`` with ``workers`` workers (default: CPU count).

    Raises:
        ValueError: If no engine has that name.
    """
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)}") from None
    return factory(workers)
