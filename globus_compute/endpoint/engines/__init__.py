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


def _parsl_engine(workers: int | None, config: str | None = None) -> Engine:
    """The Parsl engine, imported only when chosen: Parsl is an optional extra."""
    try:
        from globus_compute.endpoint.engines.parsl_engine import ParslEngine
    except ImportError as exc:
        raise ValueError(
            f"the parsl engine needs Parsl ({exc}); pip install 'globus-compute[parsl]'"
        ) from exc
    return ParslEngine(workers, config=config)


#: Engine name -> factory taking the worker count (and, for ``parsl``, a config file path).
ENGINES: dict[str, Callable[..., Engine]] = {
    ProcessEngine.name: ProcessEngine,
    ThreadEngine.name: ThreadEngine,
    "parsl": _parsl_engine,
}


def create_engine(name: str, workers: int | None = None, config: str | None = None) -> Engine:
    """Build the engine called ``name`` with ``workers`` workers (default: CPU count).

    Args:
        config: An endpoint config file (YAML); only the ``parsl`` engine takes one.

    Raises:
        ValueError: If no engine has that name, or it takes no config file.
    """
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)}") from None
    if config is None:
        return factory(workers)
    if name != "parsl":
        raise ValueError(f"the {name} engine takes no config file; use --engine parsl")
    return factory(workers, config=config)
