"""The service process's log: where it goes, how big it may grow, and no floods.

A hostile client can make the same thing go wrong thousands of times a second (connections
refused, bodies timing out, and before those existed, asyncio's traceback for every failed
``accept()``). :class:`RepeatFilter` lets each kind of record (same logger, same message
template) through a few times per window and counts the rest, which the next record of that
kind that gets through reports. With ``--log-file``, the log also rotates at a size, and the
process's stderr (a traceback nothing logged, a warning) goes to the current log file too, also
after a rotation, so a parent that pointed the child's stderr at that file (``local.py``) finds
everything in one place.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Records of one kind let through per window, and the window.
BURST, WINDOW_S = 10, 60.0
#: Kinds remembered at once; beyond it the oldest is forgotten.
MAX_KINDS = 1000
#: Rotation of a log file: this size, this many old files kept.
LOG_FILE_BYTES, LOG_FILE_BACKUPS = 10 * 1024 * 1024, 3


class RepeatFilter(logging.Filter):
    """Let through at most ``burst`` records of each kind per ``window_s`` seconds.

    A record that gets through after others of its kind were held back says how many.
    """

    def __init__(
        self,
        burst: int = BURST,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        #: kind -> [window start, records let through in it, records held back]
        self._kinds: dict[tuple[str, object], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self._clock()
        seen = self._kinds.get(key)
        if seen is None or now - seen[0] >= self.window_s:
            held = int(seen[2]) if seen else 0
            if seen is None and len(self._kinds) >= MAX_KINDS:
                del self._kinds[next(iter(self._kinds))]
            self._kinds[key] = seen = [now, 0, 0]
            if held:
                record.msg = f"{record.msg} [{held} more like this were not logged]"
        if seen[1] >= self.burst:
            seen[2] += 1
            return False
        seen[1] += 1
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file readable by its owner only (created 0600, whatever the umask).

    Args:
        capture_stderr: Point file descriptor 2 at the current file (again after each
            rotation).
    """

    def __init__(self, *args: Any, capture_stderr: bool = False, **kwargs: Any) -> None:
        self.capture_stderr = capture_stderr
        super().__init__(*args, **kwargs)

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        stream = open(fd, self.mode, encoding=self.encoding, errors=self.errors)
        if self.capture_stderr:
            sys.stderr.flush()
            os.dup2(fd, 2)
        return stream


def configure(level: str, log_file: Path | None = None) -> None:
    """Log at ``level`` to stderr, or to ``log_file`` rotating at ``LOG_FILE_BYTES`` (and
    stderr with it).

    Every record passes one :class:`RepeatFilter` (on the handler, so records of uvicorn and
    asyncio, which propagate to the root logger, are held back too).
    """
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = PrivateRotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, capture_stderr=True
        )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
