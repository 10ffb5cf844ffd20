"""ChildLog keeps draining a child's pipe when its file cannot be written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from globus_compute.child_log import ChildLog


def test_a_failed_write_drops_that_output_and_the_pipe_is_still_read_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = ChildLog(tmp_path / "child.log")
    stream = io.StringIO("".join(f"line {i}\n" for i in range(100)))
    written: list[str] = []

    def write(text: str) -> None:
        if len(written) < 3:
            written.append(text)
            return
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log, "write", write)
    log.copy_from(stream)
    assert written == ["line 0\n", "line 1\n", "line 2\n"]
    assert stream.read() == ""  # read to the end: a child writing to the pipe never blocks
    assert caplog.text.count("dropping output") == 1
    log.close()
