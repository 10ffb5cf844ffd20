"""Run the code blocks of one guide page, in order, as one script would run them.

    python tests/support/run_guide.py BLOCKS.json

``BLOCKS.json`` is a list of :class:`guide_blocks.Block` fields (the blocks that run). Python
blocks run in a fresh ``__main__`` module, so functions they define pickle as a user's script's
do, and must print exactly the output the page shows below them (if it shows any). ``bash``
blocks run under ``bash -eu -o pipefail`` in the same working directory; ``% file:`` blocks
are written there. Prints ``BLOCK-OK <page>:<line>`` after each block, and on the first
failure ``BLOCK-FAILED <page>:<line>`` with the traceback, then exits 1. Whatever the page left
running (background commands, ``LocalCompute`` stacks, Executors) is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

#: How long one bash block may run, and how long a background one may take to be ready.
BASH_TIMEOUT_S = 90.0
READY_TIMEOUT_S = 60.0
#: How long a background command may take to exit after SIGTERM before its group is killed.
STOP_TIMEOUT_S = 15.0


class Background:
    """A ``% background:`` bash block: its process group, and its output as it arrives."""

    def __init__(self, code: str) -> None:
        self.process = subprocess.Popen(
            ["bash", "-eu", "-o", "pipefail", "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="guide-background", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.output.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        """Return once the output contains ``text``; raise if it exits or times out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in "".join(self.output):
                remaining = deadline - time.monotonic()
                if self.process.poll() is not None or remaining <= 0:
                    raise RuntimeError(
                        f"background command did not print {text!r} "
                        f"(exit code {self.process.poll()}); output:\n{''.join(self.output)}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)


def run_blocks(blocks: list[dict[str, Any]]) -> int:
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    runner_main = sys.modules["__main__"]
    sys.modules["__main__"] = main
    background: list[Background] = []
    try:
        for block in blocks:
            where = f"{block['page']}:{block['line']}"
            try:
                _run_one(block, main.__dict__, background)
            except BaseException:
                print(f"BLOCK-FAILED {where}", flush=True)
                traceback.print_exc()
                sys.stdout.flush()
                return 1
            print(f"BLOCK-OK {where}", flush=True)
        return 0
    finally:
        _stop_leftovers(main.__dict__)
        for command in background:
            command.stop()
        sys.modules["__main__"] = runner_main


def _run_one(
    block: dict[str, Any], namespace: dict[str, Any], background: list[Background]
) -> None:
    code = block["code"]
    if block.get("file"):
        Path(block["file"]).write_text(code, encoding="utf-8")
    if block["language"] == "python":
        printed = StringIO()
        with redirect_stdout(printed):
            exec(compile(code, f"{block['page']}:{block['line']}", "exec"), namespace)
        sys.stdout.write(printed.getvalue())
        expected = block.get("expected")
        if expected is not None and printed.getvalue().rstrip() != expected.rstrip():
            raise AssertionError(
                f"the block printed:\n{printed.getvalue()}\nthe page shows:\n{expected}"
            )
    elif block["language"] == "bash":
        if block.get("background"):
            command = Background(code)
            background.append(command)
            command.wait_for(block["background"], READY_TIMEOUT_S)
        else:
            subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", code], check=True,
                           timeout=BASH_TIMEOUT_S)  # fmt: skip


def _stop_leftovers(namespace: dict[str, Any]) -> None:
    """Shut down Executors and stop LocalCompute stacks a page left running."""
    from globus_compute.executor import Executor
    from globus_compute.local import LocalCompute

    for value in list(namespace.values()):
        if isinstance(value, Executor):
            value.shutdown(wait=False, cancel_futures=True)
    for value in list(namespace.values()):
        if isinstance(value, LocalCompute):
            value.stop()


if __name__ == "__main__":
    sys.exit(run_blocks(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
