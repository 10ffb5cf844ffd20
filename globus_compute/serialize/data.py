"""Data strategies: ``00`` (dill, base64; the default) and ``11`` (JSON).

Speed without changing a byte: ``dill.dumps`` runs the pure-Python pickler, which is slow for the
small argument tuples that dominate task submission. For plain built-in values dill adds no
reducers of its own, so the C pickler at the same protocol emits the very same bytes (the unit
tests check this against dill and against recorded reference vectors). We take the C path only
when every object in the value has an *exact* built-in type; anything else (subclasses, complex,
frozenset, user classes) goes through dill as the reference does.

Reading ``00`` first tries the C unpickler: dill payloads name their reducers as ordinary
importable globals (``dill._dill._create_type`` ...), so ``pickle.loads`` rebuilds the same
objects. The few things only dill's unpickler resolves (``__builtin__.__main__``, legacy module
names) make ``pickle.loads`` raise, and we then use dill; objects whose class lives in
``__main__`` are also left to dill, because dill rebinds them to the live ``__main__`` class.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import pickle
from collections.abc import Iterable
from itertools import chain
from typing import Any

import dill

from globus_compute.serialize.base import SerializationStrategy

log = logging.getLogger(__name__)

__all__ = ["DillDataBase64", "JSONData", "dill_dumps", "is_plain_data"]

_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_CONTAINERS = frozenset({tuple, list, dict, set})
_BLOBS = (str, bytes)
#: Pickle's frame size target: larger strings are written outside frames.
_LARGE_BLOB = 64 * 1024
_SHORT_TUPLE = 8
#: Input bytes per base64 line: 57 bytes encode to the 76 characters of a MIME line.
_MIME_CHUNK = 57


def is_plain_data(obj: Any) -> bool:
    """True if ``obj`` is built only from exact built-in scalars and containers.

    Shared and cyclic references are fine: both picklers memoize by ``id`` with the same
    algorithm (the tests check it), so each container is only inspected once. A dict with a
    ``"__name__"`` key is refused, because dill pickles module namespaces specially.
    """
    kind = type(obj)
    if kind in _SCALARS:
        return True
    if kind not in _CONTAINERS:
        return False
    seen: set[int] = {id(obj)}
    stack: list[Any] = [obj]
    while stack:
        current = stack.pop()
        if type(current) is dict:
            if "__name__" in current:
                return False
            items: Iterable[Any] = chain(current, current.values())
        else:
            items = current
        for item in items:
            kind = type(item)
            if kind in _SCALARS:
                continue
            if kind not in _CONTAINERS:
                return False
            if id(item) not in seen:
                seen.add(id(item))
                stack.append(item)
    return True


def _is_large_blob_call(obj: Any) -> bool:
    """True for a big str/bytes, alone or in a short tuple (a typical ``(blob,)`` args tuple).

    The C pickler copies large strings into its output buffer, while dill's Python pickler
    writes them out unframed without the copy; for these values dill is the faster route to
    the same bytes.
    """
    if type(obj) is tuple and len(obj) <= _SHORT_TUPLE:
        return any(type(x) in _BLOBS and len(x) > _LARGE_BLOB for x in obj)
    return type(obj) in _BLOBS and len(obj) > _LARGE_BLOB


def dill_dumps(obj: Any) -> bytes:
    """``dill.dumps(obj)``, taking the byte-identical C pickler path for plain data."""
    if is_plain_data(obj) and not _is_large_blob_call(obj):
        return pickle.dumps(obj, protocol=dill.settings["protocol"])
    return dill.dumps(obj)


def dill_loads(raw: bytes) -> Any:
    """``dill.loads(raw)``, trying the C unpickler first where the result is the same."""
    try:
        obj = pickle.loads(raw)
    except Exception:
        return dill.loads(raw)
    if type(obj).__module__ == "__main__":
        return dill.loads(raw)
    return obj


def b64encode_mime(raw: bytes) -> str:
    """Base64 with a newline every 76 characters and at the end, as the reference writes it.

    Same output as ``base64.encodebytes`` (57 input bytes per line), but slicing a memoryview
    instead of copying each chunk, which matters for megabyte payloads.
    """
    view = memoryview(raw)
    return b"".join(
        [binascii.b2a_base64(view[i : i + _MIME_CHUNK]) for i in range(0, len(raw), _MIME_CHUNK)]
    ).decode("ascii")


def b64decode_mime(text: str) -> bytes:
    """Inverse of :func:`b64encode_mime`; newlines are ignored."""
    return base64.decodebytes(text.encode())


class DillDataBase64(SerializationStrategy):
    """The default data strategy: ``dill.dumps`` of the value, MIME base64 encoded.

    Any picklable value works; the endpoint needs importable definitions for classes pickled
    by reference.
    """

    identifier = "00\n"
    for_code = False

    def serialize(self, data: Any) -> str:
        return "00\n" + b64encode_mime(dill_dumps(data))

    def deserialize(self, payload: str) -> Any:
        return dill_loads(b64decode_mime(self.chomp(payload)))


class JSONData(SerializationStrategy):
    """``json.dumps`` with default settings: portable across Python versions, JSON types only.

    Tuples come back as lists; sets, bytes and other non-JSON values fail to serialize.
    """

    identifier = "11\n"
    for_code = False

    def serialize(self, data: Any) -> str:
        return "11\n" + json.dumps(data)

    def deserialize(self, payload: str) -> Any:
        return json.loads(self.chomp(payload))
