"""The Executor's function registrations: each function is registered with the service once.

``submit(fn, ...)`` looks ``fn`` up here on every call, so the lookup is a hash and a dict read
under a lock. The key is the function object itself (as in the reference Executor); a function
that cannot be hashed is never cached and is registered on every submit. Registered source code
is keyed by its text and entry point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["FunctionRegistry"]


class FunctionRegistry:
    """Thread-safe ``key -> function id``; the first id recorded for a key wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[Hashable, str] = {}

    @staticmethod
    def key_for(fn: Callable[..., Any]) -> Hashable | None:
        """The cache key of a function: the object itself; None (no caching) if unhashable."""
        try:
            hash(fn)
        except TypeError:
            return None
        return fn

    @staticmethod
    def key_for_source(source: str, function_name: str) -> Hashable:
        """The cache key of registered source code."""
        return ("source", source, function_name)

    def get(self, key: Hashable | None) -> str | None:
        """The function id recorded for ``key``, or None."""
        if key is None:
            return None
        with self._lock:
            return self._ids.get(key)

    def add(self, key: Hashable | None, function_id: str) -> str:
        """Record ``function_id`` for ``key`` unless one already is; return the recorded id."""
        if key is None:
            return function_id
        with self._lock:
            return self._ids.setdefault(key, function_id)
