"""The log file of a child of the embedded stack: private to its owner, and bounded.

Whatever a child writes, its own logs and the ``print`` output of every task its workers run,
reaches the parent through pipes and is copied here, so:

- the file is created 0600 (an existing one is tightened), whatever the umask: task output
  may hold secrets, and other local users must not read it;
- it never grows past ``max_bytes``: when a write would cross the limit, the file is renamed
  to ``<name>.1`` (replacing the previous one) and a new file is started, so the log and its
  one backup hold at most twice ``max_bytes``, however much a task prints;
- a pipe is read in lines of at most :data:`MAX_LINE_CHARS` characters and decoded with
  replacement characters, so neither a 50 MB line without a newline nor bytes that are not
  UTF-8 can exhaust the parent's memory or stop the copy (a child whose pipe is not drained
  blocks on its next write).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import IO

from globus_compute import state_dir as layout

log = logging.getLogger(__name__)

#: Size at which a log is rotated to ``<name>.1``.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Longest piece of one line read from a pipe at a time.
MAX_LINE_CHARS = 64 * 1024


class ChildLog:
    """An append-only log file of bounded size, readable by its owner only.

    Args:
        path: The log file; created 0600, appended to if it exists.
        max_bytes: Rotate to ``<path>.1`` once the file would grow past this.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = self._open()
        self._size = os.fstat(self._file.fileno()).st_size

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def _open(self) -> IO[bytes]:
        return os.fdopen(layout.open_private_file(self.path, os.O_WRONLY | os.O_APPEND), "ab", 0)

    def write(self, text: str) -> None:
        """Append ``text``, rotating first if it would cross the size limit."""
        data = text.encode("utf-8", "replace")
        with self._lock:
            if self._file is None:
                return
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._size += len(data)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        os.replace(self.path, self.backup_path)
        self._file = self._open()
        self._size = 0

    def copy_from(self, stream: IO[str]) -> None:
        """Copy ``stream`` (a child's text pipe) to the log until end of file.

        The pipe is read to its end whatever happens to the file: a piece that cannot be
        written (a full disk) is dropped, with one warning, rather than leave the child
        blocked on a pipe nobody reads.
        """
        warned = False
        try:
            for piece in iter(lambda: stream.readline(MAX_LINE_CHARS), ""):
                try:
                    self.write(piece)
                except OSError as exc:
                    if not warned:
                        log.warning("cannot write to %s (%s); dropping output", self.path, exc)
                        warned = True
        except (OSError, ValueError):
            log.debug("stopped copying to %s: the pipe closed", self.path, exc_info=True)

    def drain(self, stream: IO[str], name: str) -> threading.Thread:
        """Start a named thread copying ``stream`` here; it ends at the pipe's end of file.

        A daemon thread: a process that escaped its parent's stop and still holds the pipe
        open must not hold up the interpreter's exit (writes after :meth:`close` are dropped).
        """
        thread = threading.Thread(target=self.copy_from, args=(stream,), name=name, daemon=True)
        thread.start()
        return thread

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines written, for error messages."""
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - MAX_LINE_CHARS))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
