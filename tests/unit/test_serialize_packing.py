"""Framing of several serialized strings into one (pack_buffers / unpack_buffers)."""

from __future__ import annotations

import pytest

from globus_compute.serialize import ComputeSerializer, pack_buffers, unpack_buffers


def test_lengths_count_characters_not_bytes():
    packed = pack_buffers(["héllo ✓"])
    assert packed == "7\nhéllo ✓"
    assert len("héllo ✓".encode()) == 10  # a byte count would have said 10


@pytest.mark.parametrize(
    "buffers",
    [[], [""], ["", ""], ["a\nb\n", "12\n", "☃" * 100], ["00\ngARLAy4=\n"] * 3],
)
def test_round_trip(buffers):
    assert unpack_buffers(pack_buffers(buffers)) == buffers


def test_static_methods_on_serializer_match_functions():
    assert ComputeSerializer.pack_buffers(["a", "bc"]) == pack_buffers(["a", "bc"]) == "1\na2\nbc"
    assert ComputeSerializer.unpack_buffers("1\na2\nbc") == ["a", "bc"]


@pytest.mark.parametrize(
    "packed, message",
    [
        ("5", "Missing newline delimiter"),
        ("1\na5", "Missing newline delimiter"),
        ("x\nabc", "Invalid length delimiter: x"),
        ("\nabc", "Invalid length delimiter: "),
        ("-1\nabc", "Length delimiter must be non-negative: -1"),
        ("10\nabc", "Truncated buffer: expected 10 characters, but only 3 characters remain"),
        ("3\nabc5\nxy", "Truncated buffer: expected 5 characters, but only 2 characters remain"),
    ],
)
def test_malformed_input_raises_reference_messages(packed, message):
    with pytest.raises(ValueError) as info:
        unpack_buffers(packed)
    assert str(info.value) == message


def test_truncated_task_buffer_fails_in_unpack_and_deserialize():
    serde = ComputeSerializer()
    packed = pack_buffers([serde.serialize(len), serde.serialize(()), serde.serialize({})])
    with pytest.raises(ValueError, match="^Truncated buffer: expected 12 characters, but only 5"):
        serde.unpack_and_deserialize(packed[:-7])
