"""Functions the benchmarks run, importable by every worker (pool and endpoint processes)."""

from __future__ import annotations


def noop(*args: object) -> None:
    """Do nothing: measures pure dispatch overhead."""
    return None


def echo(x: object) -> object:
    """Return the argument: a round trip through both serializers."""
    return x
