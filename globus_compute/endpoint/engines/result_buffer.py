"""Results a worker has finished but not yet sent, kept where they survive the worker's death.

A worker of the process engine sends the results of short tasks in batches (``worker.py``), so
for a millisecond or two a finished result exists only in the worker. If the worker dies then
(the next task calls ``os._exit``, the machine SIGKILLs it), the result must neither be lost nor
the task run again. So the worker writes each result, as it finishes, into a block of shared
memory the engine allocated for it; a batch send ships that block's bytes and empties it. When
the worker dies, the engine reads what is left in the block and delivers it: a finished task
keeps its result whatever happens to its worker next.

Layout: ``used`` (a shared 8-byte integer) counts the bytes of whole records at the start of
``data``; each record is a 4-byte big-endian length and the pickle of ``(seq, TaskResult)``. A
record is written first and ``used`` is advanced after it by one aligned store, so a reader
never sees half a record. The same records, concatenated, are what a batch message carries.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

from globus_compute.protocol.agent import TaskResult

__all__ = ["RESULT_BUFFER_BYTES", "ResultBuffer", "encode_record", "decode_records"]

#: Shared memory per worker. A couple of milliseconds of no-op results take a few kB; a result
#: too big for the block is sent on its own at once.
RESULT_BUFFER_BYTES = 1 << 20

_HEADER = struct.Struct("!I")


def encode_record(seq: int, result: TaskResult) -> bytes:
    """One record: the length, then the pickle of ``(seq, result)``."""
    payload = pickle.dumps((seq, result), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def decode_records(blob: bytes | memoryview) -> list[tuple[int, TaskResult]]:
    """Every whole record in ``blob`` (a batch message, or a dead worker's block)."""
    view = memoryview(blob)
    records = []
    offset = 0
    while offset + _HEADER.size <= len(view):
        (length,) = _HEADER.unpack_from(view, offset)
        start = offset + _HEADER.size
        if start + length > len(view):
            break  # cut short (a message torn by the worker's death)
        records.append(pickle.loads(view[start : start + length]))
        offset = start + length
    return records


class ResultBuffer:
    """One worker's block of unsent results; built by the engine, handed to the worker.

    Args:
        data: A ``multiprocessing`` shared byte array (``RawArray("B", size)``).
        used: A shared ``c_longlong`` (``RawValue("q")``): bytes of whole records in ``data``.
    """

    def __init__(self, data: Any, used: Any) -> None:
        self.data = data
        self.used = used
        self._view = memoryview(data).cast("B")

    @classmethod
    def allocate(cls, mp_context: Any, size: int = RESULT_BUFFER_BYTES) -> ResultBuffer:
        return cls(mp_context.RawArray("B", size), mp_context.RawValue("q", 0))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResultBuffer, (self.data, self.used))

    # -- in the worker -------------------------------------------------------------------------

    def append(self, record: bytes) -> bool:
        """Keep one encoded record; False if it does not fit (send what is held, then retry)."""
        used = self.used.value
        end = used + len(record)
        if end > len(self._view):
            return False
        self._view[used:end] = record
        self.used.value = end  # published only once the record is whole
        return True

    def held(self) -> memoryview:
        """The records held, to send (without copying)."""
        return self._view[: self.used.value]

    def clear(self) -> None:
        """Forget the records held (they were sent)."""
        self.used.value = 0

    # -- in the engine, once the worker is dead -----------------------------------------------

    def unsent(self) -> list[tuple[int, TaskResult]]:
        """The results the dead worker finished and had not sent (some may have been sent)."""
        return decode_records(bytes(self._view[: self.used.value]))
