"""Length-prefixed framing of several serialized strings into one string.

A task body on the wire is one string holding several serialized values (function, args,
kwargs). Each value is written as ``<length>\\n<value>``, where the length counts Python ``str``
characters (code points), not UTF-8 bytes: that is what the reference SDK writes, and endpoints
parse it the same way, so a byte count would misalign every buffer after the first non-ASCII one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

__all__ = ["pack_buffers", "unpack_buffers"]


def pack_buffers(buffers: Iterable[str]) -> str:
    """Frame serialized strings so that :func:`unpack_buffers` can split them again.

    Args:
        buffers: Serialized strings (normally the output of ``ComputeSerializer.serialize``).

    Returns:
        The concatenation of ``f"{len(b)}\\n{b}"`` for every buffer, in order.
    """
    return "".join([f"{len(b)}\n{b}" for b in buffers])


def unpack_buffers(packed_buffer: str) -> list[str]:
    """Split a string made by :func:`pack_buffers` back into its buffers.

    Parsing walks the string with indices instead of re-splitting the remainder, so unpacking
    many small buffers stays linear in the input size.

    Args:
        packed_buffer: A packed string; the empty string holds no buffers.

    Returns:
        The buffers in their original order.

    Raises:
        ValueError: With the reference SDK's messages, when a length line has no newline, is
            not an integer, is negative, or promises more characters than remain.
    """
    buffers: list[str] = []
    pos = 0
    end = len(packed_buffer)
    while pos < end:
        newline = packed_buffer.find("\n", pos)
        if newline < 0:
            raise ValueError("Missing newline delimiter")
        delimiter = packed_buffer[pos:newline]
        try:
            length = int(delimiter)
        except ValueError as exc:
            raise ValueError(f"Invalid length delimiter: {delimiter}") from exc
        if length < 0:
            raise ValueError(f"Length delimiter must be non-negative: {length}")
        start = newline + 1
        remaining = end - start
        if remaining < length:
            raise ValueError(
                f"Truncated buffer: expected {length} characters, but only"
                f" {remaining} characters remain"
            )
        pos = start + length
        buffers.append(packed_buffer[start:pos])
    return buffers
