"""The block where a worker keeps finished results until they are sent (``result_buffer.py``).

That it crosses to a real worker and survives its death: ``test_endpoint_engines.py``.
"""

from __future__ import annotations

import multiprocessing

import pytest

from globus_compute.endpoint.engines.result_buffer import (
    ResultBuffer,
    decode_records,
    encode_record,
)

pytestmark = pytest.mark.timeout(30)


def _result(task_id: str, size: int = 10) -> dict:
    return {"task_id": task_id, "status": "success", "result": "x" * size, "completion_t": "1"}


def test_records_kept_are_what_a_batch_carries_and_what_a_death_leaves() -> None:
    block = ResultBuffer.allocate(multiprocessing.get_context("spawn"), size=4096)
    for seq in range(3):
        assert block.append(encode_record(seq, _result(f"t{seq}")))
    sent = bytes(block.held())
    assert [seq for seq, _ in decode_records(sent)] == [0, 1, 2]
    assert block.unsent() == decode_records(sent)
    block.clear()
    assert block.unsent() == [] and len(block.held()) == 0


def test_a_record_that_does_not_fit_is_refused_and_nothing_is_torn() -> None:
    block = ResultBuffer.allocate(multiprocessing.get_context("spawn"), size=512)
    assert block.append(encode_record(0, _result("small")))
    assert not block.append(encode_record(1, _result("big", 1000)))
    assert [r["task_id"] for _, r in block.unsent()] == ["small"]


def test_a_message_cut_short_yields_its_whole_records_only() -> None:
    blob = encode_record(0, _result("a")) + encode_record(1, _result("b"))
    assert [seq for seq, _ in decode_records(blob[:-3])] == [0]
    assert decode_records(b"") == []
