"""The endpoint agent: runs tasks claimed from a Compute service on a pluggable engine.

Start one with ``python -m globus_compute.endpoint`` or :func:`run_endpoint`; embed one with
:class:`Agent` and an engine from :func:`create_engine`.
"""

from __future__ import annotations

from globus_compute.endpoint.agent import Agent
from globus_compute.endpoint.engines import Engine, EngineContext, create_engine
from globus_compute.endpoint.main import run_endpoint

__all__ = ["Agent", "Engine", "EngineContext", "create_engine", "run_endpoint"]
