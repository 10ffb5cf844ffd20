"""A child process's tie to its parent: the start-up handshake, and dying with the parent.

Every process the embedded stack starts must end with its owner, however the owner ends:
SIGTERM from ``timeout`` or a batch system's time limit, SIGKILL, a crash. The tie is one end of
a socket pair or pipe that only the parent holds. When the parent process ends, for whatever
reason, the kernel closes that end and the child reads end-of-file; a watch thread in the child
waits for exactly that and then stops the child. Nothing has to run in the dying parent, and
unlike Linux's ``PR_SET_PDEATHSIG`` the tie belongs to the parent *process*, not to whichever
of its threads started the child (a ``LocalCompute`` started in a thread that then ends must
not take its stack with it)::

    parent (LocalCompute)                         child (service, agent)
    ---------------------                         ----------------------
    Lifeline()   socket pair, fd in the env ───►  ChildLifeline.from_environment()
    .read_line(timeout) ◄──── "READY ..." ──────  .announce(line)         the handshake
        end of file: the child exited before it was ready ("exited with code N")
    the parent ends, its end closes ──── EOF ───► .watch(on_parent_gone)  stop, gracefully

The process engine ties each worker to the agent the same way, with a pipe
(:class:`ParentWatch` on the read end). Where the worker's parent is the forkserver (a single
thread, which exits when the agent does) it also asks the kernel, on Linux, for SIGKILL when the
parent dies (:func:`die_with_parent`): a task that holds the GIL in C code can starve a watch
thread, never a signal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ENV_VAR", "ChildLifeline", "Lifeline", "ParentWatch", "die_with_parent"]

log = logging.getLogger(__name__)

#: The environment variable that hands a child the file descriptor of its end of the tie.
ENV_VAR = "GLOBUS_COMPUTE_LIFELINE_FD"
#: How often a watch thread re-checks its stop event (it wakes at once on end of file).
WATCH_POLL_S = 0.5
#: Longest handshake line accepted, in bytes.
MAX_LINE = 4096

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Lifeline:
    """The parent's end of the tie to one child.

    Give the child :attr:`child_fd` (``pass_fds`` and ``env``), call :meth:`close_child_end`
    once it started, then :meth:`read_line` for its handshake. Keep this object (and so the
    tie) as long as the child should live; :meth:`close` cuts it, which tells the child to stop.
    """

    def __init__(self) -> None:
        self._parent, self._child = socket.socketpair()
        self._buffer = b""

    @property
    def child_fd(self) -> int:
        return self._child.fileno()

    def child_env(self) -> dict[str, str]:
        """The environment entry that tells the child its end (see :data:`ENV_VAR`)."""
        return {ENV_VAR: str(self.child_fd)}

    def close_child_end(self) -> None:
        """Drop our copy of the child's end, so that its death reads as end of file here."""
        self._child.close()

    def read_line(self, timeout: float) -> str | None:
        """The child's handshake line; None if the child closed its end (it exited) first.

        Raises:
            TimeoutError: Nothing arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no handshake within {timeout:.0f} s")
            readable, _, _ = select.select([self._parent], [], [], remaining)
            if not readable:
                continue
            chunk = self._parent.recv(MAX_LINE)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise ValueError("the child's handshake line is too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        for end in (self._parent, self._child):
            end.close()


class ChildLifeline:
    """The child's end of the tie, from :data:`ENV_VAR`.

    Args:
        fd: The inherited socket's file descriptor.
    """

    def __init__(self, fd: int) -> None:
        os.set_inheritable(fd, False)  # ours alone: no grandchild may keep the tie alive
        self._socket = socket.socket(fileno=fd)
        self._watch: ParentWatch | None = None

    @classmethod
    def from_environment(cls) -> ChildLifeline | None:
        """The tie this process was started with, or None (it was started by hand).

        The variable is removed, so that this process's own children do not mistake the tie
        for theirs.
        """
        value = os.environ.pop(ENV_VAR, None)
        if not value:
            return None
        try:
            return cls(int(value))
        except (ValueError, OSError) as exc:
            log.warning("ignoring %s=%r: %s", ENV_VAR, value, exc)
            return None

    def announce(self, line: str) -> None:
        """Send the handshake line (no newline in it) to the parent."""
        try:
            self._socket.sendall(line.encode() + b"\n")
        except OSError as exc:
            log.warning("could not send the handshake to the parent: %s", exc)

    def watch(self, on_parent_gone: Callable[[], None]) -> None:
        """Call ``on_parent_gone`` once, from a watch thread, when the parent's end closes."""
        self._watch = ParentWatch(self._socket.fileno(), on_parent_gone)
        self._watch.start()

    def close(self) -> None:
        """Stop watching (joins the watch thread) and close this end."""
        if self._watch is not None:
            self._watch.stop()
        self._socket.close()

    def __enter__(self) -> ChildLifeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ParentWatch:
    """A named thread that calls ``on_eof`` once when ``fd`` reads end of file.

    Anything else readable on ``fd`` is read and ignored. Stopped with :meth:`stop` (joined).

    Args:
        fd: The read end of the tie (a socket or pipe only the parent writes to).
        on_eof: What to do when the parent is gone; runs in the watch thread.
    """

    def __init__(self, fd: int, on_eof: Callable[[], None]) -> None:
        self._fd = fd
        self._on_eof = on_eof
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parent-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(WATCH_POLL_S + 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self._fd], [], [], WATCH_POLL_S)
                if readable and not os.read(self._fd, MAX_LINE):
                    break
            except OSError:
                break  # the descriptor was closed under us: the tie is cut
        else:
            return
        if not self._stop.is_set():
            log.warning("the parent process is gone; stopping")
            self._on_eof()


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread ends (Linux).

    Use it only where the parent is a single-threaded process (the multiprocessing
    forkserver): the kernel ties the signal to the thread that forked this process.

    Returns:
        True if the request was made, False where the platform has no such call.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc: Any = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), sig)
    return True
