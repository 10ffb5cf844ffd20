"""Functions the benchmarks run, importable by every worker (pool and endpoint processes)."""

from __future__ import annotations


def noop(*args: object) -> None:
    """Do nothing: measures pure dispatch overhead."""
    return None


def echo(x: object) -> object:
    """Return the argument: a round trip through both serializers."""
    return x


def sleep_10ms(*args: object) -> None:
    """Sleep 10 ms: a short task that occupies a worker without using a core."""
    import time

    time.sleep(0.01)


def result_100kb(*args: object) -> str:
    """Return 100 KB of text: a result that makes poll answers large."""
    return "r" * 100_000
