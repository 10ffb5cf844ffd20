"""Code strategies: how a function travels to the endpoint.

``01`` (DillCode, the default) pickles the function object itself, bytecode included, so it only
loads on the same Python minor version. ``st`` and ``sd`` send the function's source text and
load anywhere the source compiles, but need the source to be findable (``st`` via
``inspect.getsource``, which works in notebooks; ``sd`` via ``dill.source``, which also works in
an interactive interpreter). ``04`` and ``03`` are older, deprecated dill-wrapped forms of the
same source; ``02`` (plain pickle) is only ever read, for functions registered long ago.
"""

from __future__ import annotations

import inspect
import logging
import pickle
from collections.abc import Callable
from typing import Any

import dill
import dill.source

from globus_compute.errors import SerializationError
from globus_compute.serialize.base import SerializationStrategy
from globus_compute.serialize.data import b64decode_mime, b64encode_mime, dill_dumps

log = logging.getLogger(__name__)

__all__ = [
    "DillCode",
    "PureSourceTextInspect",
    "PureSourceDill",
    "DillCodeSource",
    "DillCodeTextInspect",
    "PickleCode",
    "load_source",
]


def load_source(name: str, source: str) -> Callable[..., Any]:
    """Execute ``source`` in a fresh namespace and return what it binds to ``name``.

    A fresh namespace keeps one task's definitions from leaking into the next one's.
    """
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace[name]


def _split_name(text: str) -> tuple[str, str]:
    # Function names cannot contain ":", source can; so the first ":" is the separator.
    name, _sep, body = text.partition(":")
    return name, body


class DillCode(SerializationStrategy):
    """The default code strategy: ``dill.dumps`` of the function, MIME base64 encoded.

    Handles closures, decorated functions and lambdas, but ties the payload to this Python
    minor version (the bytecode is inside).
    """

    identifier = "01\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        return "01\n" + b64encode_mime(dill.dumps(data))

    def deserialize(self, payload: str) -> Any:
        # dill, not pickle: function payloads reference ``__builtin__.__main__`` for globals.
        return dill.loads(b64decode_mime(self.chomp(payload)))


class PureSourceTextInspect(SerializationStrategy):
    """``<name>:<inspect.getsource(fn)>`` as plain text; portable across Python versions."""

    identifier = "st\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        return f"st\n{data.__name__}:{inspect.getsource(data)}"

    def deserialize(self, payload: str) -> Any:
        return load_source(*_split_name(self.chomp(payload)))


class PureSourceDill(SerializationStrategy):
    """``<name>:<dill.source.getsource(fn, lstrip=True)>`` as plain text.

    ``lstrip`` dedents functions defined inside a block so the source compiles on its own.
    """

    identifier = "sd\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        return f"sd\n{data.__name__}:{dill.source.getsource(data, lstrip=True)}"

    def deserialize(self, payload: str) -> Any:
        return load_source(*_split_name(self.chomp(payload)))


class DillCodeSource(SerializationStrategy):
    """Deprecated since 4.0 (use :class:`PureSourceDill`): dill-pickled ``(name, source)``."""

    identifier = "04\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        pair = (data.__name__, dill.source.getsource(data, lstrip=True))
        return "04\n" + b64encode_mime(dill_dumps(pair))

    def deserialize(self, payload: str) -> Any:
        name, source = dill.loads(b64decode_mime(self.chomp(payload)))
        return load_source(name, source)


class DillCodeTextInspect(SerializationStrategy):
    """Deprecated since 4.0 (use :class:`PureSourceTextInspect`): dill-pickled name and source."""

    identifier = "03\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        pair = (data.__name__, inspect.getsource(data))
        return "03\n" + b64encode_mime(dill_dumps(pair))

    def deserialize(self, payload: str) -> Any:
        name, source = dill.loads(b64decode_mime(self.chomp(payload)))
        return load_source(name, source)


class PickleCode(SerializationStrategy):
    """Read-only: functions pickled with plain ``pickle`` by very old SDKs.

    Not selectable; serializing raises, since plain pickle stores functions by reference only
    and would fail on any endpoint that cannot import them.
    """

    identifier = "02\n"
    for_code = True
    selectable = False

    def serialize(self, data: Any) -> str:
        raise SerializationError("Pickle serialization is no longer supported")

    def deserialize(self, payload: str) -> Any:
        return pickle.loads(b64decode_mime(self.chomp(payload)))
