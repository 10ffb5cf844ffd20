"""The Executor's function registrations: each function's code is registered with the service once.

Two maps, neither of which keeps a submitted callable alive:

* by *code*: the SHA-256 of the function as the client's serializer writes it (exactly what
  ``register_function`` sends) -> function id. Equal code means one registration, however many
  objects carry it: 20 instances' ``obj.method`` register once if the instances are equal, and
  separately if not (their state is part of the serialized method, and the endpoint must run
  each with its own).
* by *object*, the fast path of every ``submit``: the callable (for a bound method, its
  ``__self__`` and ``__func__``) -> function id, referenced weakly; an entry goes when its
  object does. A hit skips serializing; a miss serializes once and consults the code map.

As in the reference Executor, an object is registered as it is when first seen: mutating it (or
a global that dill captured by value) later does not re-register it. A callable that cannot be
referenced weakly (a builtin, say) is serialized on every submit to find its code's id.
Registered source code is keyed by its text and entry point.
"""

from __future__ import annotations

import hashlib
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["FunctionRegistry", "code_digest"]


class CodeSerializer(Protocol):
    def serialize(self, value: Any) -> str: ...


def code_digest(serializer: CodeSerializer, fn: Callable[..., Any]) -> str:
    """The code-map key of ``fn``: the SHA-256 of its serialized form.

    Raises:
        SerializationError: ``fn`` cannot be serialized (registering it would fail too).
    """
    return hashlib.sha256(serializer.serialize(fn).encode()).hexdigest()


def _anchor(fn: Callable[..., Any]) -> tuple[Any, Any]:
    """The object to reference weakly for ``fn``, and what else tells it apart."""
    if isinstance(fn, types.MethodType):
        # A bound method is made anew at every attribute access; its instance is what lasts.
        return fn.__self__, fn.__func__
    return fn, None


class FunctionRegistry:
    """Thread-safe ``callable -> function id`` and ``code digest -> function id``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_code: dict[str, str] = {}
        self._by_source: dict[tuple[str, str], str] = {}
        # (id(anchor), extra) -> (weak reference to anchor, function id); the reference both
        # removes the entry when the anchor goes and guards against a reused id().
        self._by_object: dict[tuple[int, Any], tuple[weakref.ref[Any], str]] = {}

    def get(self, fn: Callable[..., Any]) -> str | None:
        """The function id recorded for this very callable, or None."""
        anchor, extra = _anchor(fn)
        entry = self._by_object.get((id(anchor), extra))  # one dict read: atomic
        if entry is not None and entry[0]() is anchor:
            return entry[1]
        return None

    def get_code(self, digest: str) -> str | None:
        """The function id recorded for this code, or None."""
        with self._lock:
            return self._by_code.get(digest)

    def add(self, fn: Callable[..., Any], function_id: str, digest: str | None) -> str:
        """Record ``function_id`` for ``fn`` (and its code) unless one already is.

        Returns:
            The id now recorded for ``fn``: the first one wins.
        """
        anchor, extra = _anchor(fn)
        key = (id(anchor), extra)
        with self._lock:
            if digest is not None:
                self._by_code.setdefault(digest, function_id)
            entry = self._by_object.get(key)
            if entry is not None and entry[0]() is anchor:
                return entry[1]
            try:
                ref = weakref.ref(anchor, self._forgetter(key))
            except TypeError:  # not weakly referenceable: found by its code next time
                return function_id
            self._by_object[key] = (ref, function_id)
        return function_id

    def get_source(self, source: str, function_name: str) -> str | None:
        """The function id recorded for registered source code, or None."""
        with self._lock:
            return self._by_source.get((source, function_name))

    def add_source(self, source: str, function_name: str, function_id: str) -> str:
        """Record ``function_id`` for source code unless one already is; return the recorded id."""
        with self._lock:
            return self._by_source.setdefault((source, function_name), function_id)

    def _forgetter(self, key: tuple[int, Any]) -> Callable[[weakref.ref[Any]], None]:
        by_object = self._by_object

        def forget(ref: weakref.ref[Any]) -> None:
            # Runs wherever the anchor is collected (any thread, inside gc): no lock, only
            # dict operations, and only if the entry is still this reference's.
            entry = by_object.get(key)
            if entry is not None and entry[0] is ref:
                by_object.pop(key, None)

        return forget
