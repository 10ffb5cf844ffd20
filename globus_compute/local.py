"""The embedded stack: a Compute service and one endpoint agent on this machine.

``LocalCompute`` is for scripts, notebooks and tests that want the real thing without an account
or a network: a real web service (uvicorn, SQLite) on a free loopback port and a real endpoint
agent with worker processes, each in its own process, exactly as they would run apart::

    with LocalCompute(workers=2) as local:
        with local.executor() as ex:
            print(ex.submit(pow, 2, 10).result())

It is the only module that knows both sides: it starts them as subprocesses through their
command-line entry points (``python -m globus_compute.service`` and
``python -m globus_compute.endpoint``) and talks to them over HTTP only. Each child is tied to
this process by a :mod:`~globus_compute.lifeline` and runs in its own process group, so none
outlives its owner.

The state dir is private to its owner (``state_dir.make_private_dir``). The agent and the
clients handed out here reach the service over its Unix socket in that dir
(``local_socket.py``), never over the TCP port another local user could squat, and the agent
reads its token from the 0600 token file: no token is ever on a command line. The TCP URL
(``base_url``) remains for reference clients, which send their token to whatever listens there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from globus_compute import local_socket
from globus_compute import state_dir as layout
from globus_compute.child_log import ChildLog
from globus_compute.errors import LocalComputeError
from globus_compute.lifeline import Lifeline

if TYPE_CHECKING:
    from globus_compute.client import Client
    from globus_compute.executor import Executor

log = logging.getLogger(__name__)

#: How long a child may take to say it is ready (a cold start imports FastAPI, dill, ...).
STARTUP_TIMEOUT_S = 60.0
#: How long a child may take to exit after SIGTERM before its process group is killed.
STOP_TIMEOUT_S = 15.0
#: How long ``LocalCompute.stop()`` lets the endpoint's running tasks finish.
DRAIN_TIMEOUT_S = 3.0
#: What a stopping agent needs besides the drain: the engine's stop, the last report, goodbye.
AGENT_STOP_SLACK_S = 8.0
#: How long a child whose lifeline closed may take to be reaped (it is exiting).
EXIT_CODE_WAIT_S = 5.0
#: How often a stopping child is checked for having exited.
EXIT_POLL_S = 0.02
#: How long a stopped child's output may take to reach its log (the pipe is at its end).
LOG_COPY_JOIN_S = 2.0

#: Seconds ``stop`` waits for SIGKILLed members of a child's process group to be gone.
GROUP_GONE_S = 5.0


def _parent_import_path() -> str:
    """This process's ``sys.path`` as a ``PYTHONPATH`` for the children.

    dill pickles functions of importable modules by reference, so the endpoint's workers must
    import the same modules the caller can, as ``ProcessPoolExecutor``'s children do: the
    embedded endpoint runs on the same machine, so it gets the same import path.
    """
    entries = [p or os.getcwd() for p in sys.path]
    extra = os.environ.get("PYTHONPATH")
    if extra:
        entries.append(extra)
    return os.pathsep.join(dict.fromkeys(entries))


class ChildProcess:
    """One child of the embedded stack, tied to this process by a :mod:`~globus_compute.lifeline`.

    The child's stdout and stderr go through one pipe to a :class:`ChildLog` (a private,
    bounded file in the state dir), copied by a daemon thread, so a chatty child never blocks,
    the output of the tasks it runs is readable by its owner only, and a pipe that one of the
    child's own children keeps open cannot hold up this interpreter's exit. Its first line of
    handshake arrives over the lifeline, whose end of file also tells at once that the child
    exited before it was ready. The child runs in a session (and process group) of its own, and
    is stopped with its whole group: nothing it started outlives :meth:`stop`. If this process
    dies instead, the child reads end of file on the lifeline and stops.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, umask: int = -1) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.umask = umask  # -1: inherit ours (tests run the service under other umasks)
        self._log: ChildLog | None = None
        self.process: subprocess.Popen[str] | None = None
        self._lifeline: Lifeline | None = None
        self._copier: threading.Thread | None = None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """Start the child and return its handshake line.

        Raises:
            LocalComputeError: The child exited first ("exited with code N", with its log), or
                said nothing within ``timeout`` seconds.
        """
        self._log = child_log = ChildLog(self.log_path)
        self._lifeline = lifeline = Lifeline()
        env = dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=_parent_import_path(),
            **lifeline.child_env(),
        )
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",  # a task printing bytes that are not UTF-8 must not stop the copy
            env=env,
            pass_fds=(lifeline.child_fd,),
            start_new_session=True,  # a Ctrl-C in the user's terminal reaches us, not them
            umask=self.umask,
        )
        lifeline.close_child_end()
        assert self.process.stdout is not None
        self._copier = child_log.drain(self.process.stdout, f"{self.name}-output")
        try:
            line = lifeline.read_line(timeout)
        except (TimeoutError, ValueError) as exc:
            self.stop()
            raise LocalComputeError(
                f"the {self.name} did not start within {timeout:.0f} s ({exc}); it was stopped. "
                f"Its log follows:\n{self.log_tail()}"
            ) from None
        if line is None:
            code = self._exit_code_soon()
            self.stop()
            raise LocalComputeError(
                f"the {self.name} exited with code {code} before it was ready; its log "
                f"({self.log_path}) ends with:\n{self.log_tail()}"
            )
        return line.strip()

    def _exit_code_soon(self) -> int | None:
        """The exit code of a child that just closed its lifeline (None if it is still up)."""
        assert self.process is not None
        try:
            return self.process.wait(EXIT_CODE_WAIT_S)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 40) -> str:
        return self._log.tail(lines) if self._log is not None else "(no log)"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the child and its process group (for fault tests: no chance to clean up)."""
        if self.process is not None and self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGKILL)
        self.stop()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the child to exit (SIGTERM) and wait ``timeout`` seconds; then kill its group.

        Whatever is left in the child's process group once the child has exited (a worker that
        ignored its own stop, a multiprocessing forkserver still winding down) is killed too,
        before the child is reaped: the group id cannot be reused while the child is a zombie.
        Returns once the child is reaped and no process of its group runs any more (SIGKILL
        lands asynchronously; on a busy machine a killed process runs on for a moment).
        """
        process = self.process
        if process is not None and process.returncode is None:
            if not _exited(process.pid, 0.0):
                process.terminate()
                if not _exited(process.pid, timeout):
                    log.warning(
                        "%s did not exit %.0f s after SIGTERM; killing it and its processes",
                        self.name,
                        timeout,
                    )
            _signal_group(process.pid, signal.SIGKILL)  # also whatever it left behind
            _wait_group_gone(process.pid, GROUP_GONE_S)
            process.wait()
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None
        if self._copier is not None:
            # The group is gone, so the pipe is at its end; a process that left the group and
            # still holds it only leaves the (daemon) copier waiting, and its output unlogged.
            self._copier.join(LOG_COPY_JOIN_S)
            self._copier = None
        if self._log is not None:
            self._log.close()


def _exited(pid: int, timeout: float) -> bool:
    """Whether child ``pid`` has exited within ``timeout`` s, without reaping it."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # already reaped
        if info is not None and info.si_pid == pid:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pause.wait(min(EXIT_POLL_S, remaining))


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count); Linux's /proc."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait up to ``timeout`` s for every process of group ``pgid`` to stop running."""
    if not os.path.isdir("/proc"):
        return
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while _group_running(pgid) and time.monotonic() < deadline:
        pause.wait(EXIT_POLL_S)


def _signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to every process of group ``pgid`` (a child started in its own session)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch_service(
    state_dir: Path,
    log_path: Path,
    *,
    host: str | None = "127.0.0.1",
    port: int = 0,
    args: Sequence[str] = (),
    umask: int = -1,
) -> tuple[ChildProcess, str]:
    """Start ``python -m globus_compute.service`` on 127.0.0.1 and wait until it serves.

    Args:
        state_dir: The service's state dir (created by the service, 0700, if missing).
        log_path: Where its output goes: its log (``--log-file``, rotated at 10 MB; its
            stderr follows the current file) and its first lines of stdout.
        host: The interface to bind; None leaves it to the service's default (loopback).
        port: The port; 0 picks a free one.
        args: Extra command-line options (``--lease-s``, ``--retention-s``, ...).
        umask: The child's umask; -1 keeps ours.

    Returns:
        The running child and the service's base URL.
    """
    argv = [
        sys.executable, "-m", "globus_compute.service",
        "--port", str(port), "--state-dir", str(state_dir), "--log-file", str(log_path), *args,
    ]  # fmt: skip
    if host is not None:
        argv += ["--host", host]
    child = ChildProcess("service", argv, log_path, umask=umask)
    ready = child.start()
    if not ready.startswith("READY "):
        child.stop()
        raise LocalComputeError(f"unexpected service handshake: {ready!r}")
    return child, ready.split(" ", 1)[1]


class LocalCompute:
    """A Compute service and one endpoint agent on this machine, as a context manager.

    Args:
        workers: Worker processes (or threads) of the endpoint.
        engine: The endpoint's engine: ``"process"`` (default), ``"thread"`` or ``"parsl"``
            (needs ``pip install 'globus-compute[parsl]'``).
        state_dir: Where the database, token files and logs live. None: a temporary dir,
            removed on exit. A given dir is kept, so a later ``LocalCompute`` resumes it; it
            is made private (0700) first, and refused if another user could replace it.
        endpoint_name: The endpoint's name (same name and owner keep the endpoint id).
        lease_s: Task lease of the service (how soon a dead agent's tasks are re-queued or
            failed); None keeps the service default.
        max_retries_on_system_failure: How often the endpoint re-runs a task whose worker or
            agent died before failing it (the reference endpoint's setting; default 0).
        port: The service port; 0 picks a free one.
        service_args: Extra command-line options for the service (e.g. ``["--retention-s",
            "60"]``).
        endpoint_config: An endpoint config file (YAML, see ``examples/endpoint_config_*.yaml``)
            for the ``parsl`` engine.
        allowed_serializers: The endpoint's deserializer allow-list (``Agent``), e.g.
            ``["globus_compute_sdk.*Code", "globus_compute_sdk.serialize.JSONData"]``: only
            JSON arguments; empty (default) allows every strategy.
        drain_timeout_s: How long :meth:`stop` lets tasks still running finish before they
            are given back to the service (re-queued or failed per
            ``max_retries_on_system_failure``).

    Lifetime: every process this starts (the service, the agent, its forkserver and workers)
    ends with it. :meth:`stop` returns within about ``drain_timeout_s + 10`` seconds with all
    of them gone, also with a task still running; and if this process is killed (SIGTERM,
    SIGKILL) its children notice within a second and stop.
    """

    def __init__(
        self,
        workers: int = 2,
        engine: str = "process",
        state_dir: str | os.PathLike[str] | None = None,
        *,
        endpoint_name: str = "local",
        lease_s: float | None = None,
        max_retries_on_system_failure: int = 0,
        port: int = 0,
        service_args: Sequence[str] = (),
        endpoint_config: str | os.PathLike[str] | None = None,
        allowed_serializers: Sequence[str] = (),
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.engine = engine
        self.endpoint_name = endpoint_name
        self.lease_s = lease_s
        self.max_retries_on_system_failure = max_retries_on_system_failure
        self._owns_state_dir = state_dir is None
        self._given_state_dir = state_dir
        self._port = port
        self.service_args = list(service_args)
        self.endpoint_config = endpoint_config
        self.allowed_serializers = list(allowed_serializers)
        self.drain_timeout_s = drain_timeout_s
        self.state_dir: Path | None = None
        self.base_url: str | None = None
        self.socket_url: str | None = None
        self.token: str | None = None
        self.endpoint_id: str | None = None
        self.service: ChildProcess | None = None
        self.endpoint: ChildProcess | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalCompute:
        """Start the service, then the endpoint; idempotent while running."""
        if self.service is not None:
            return self
        if self._given_state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="globus-compute-local-"))
        else:
            self.state_dir = layout.make_private_dir(self._given_state_dir)
        try:
            self.start_service()
            self.start_endpoint()
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self) -> None:
        """(Re)start the service on the same state dir and, once known, the same port."""
        assert self.state_dir is not None
        args = list(self.service_args)
        if self.lease_s is not None:
            args += ["--lease-s", str(self.lease_s)]
        self.service, self.base_url = launch_service(
            self.state_dir, self.state_dir / "service.log", port=self._port, args=args
        )
        self._port = int(self.base_url.rsplit(":", 1)[1])
        self.socket_url = local_socket.socket_url(layout.socket_path(self.state_dir))
        self.token = layout.read_token_file(layout.token_path(self.state_dir))
        if not self.token:
            raise LocalComputeError(f"the service wrote no token under {self.state_dir}")

    def start_endpoint(self) -> None:
        """(Re)start the endpoint agent under the same name (so with the same endpoint id)."""
        assert self.state_dir is not None and self.socket_url and self.token
        argv = [
            sys.executable, "-m", "globus_compute.endpoint",
            "--service-url", self.socket_url,
            "--token-file", str(layout.token_path(self.state_dir)),
            "--name", self.endpoint_name,
            "--workers", str(self.workers),
            "--engine", self.engine,
            "--max-retries-on-system-failure", str(self.max_retries_on_system_failure),
            "--drain-timeout-s", str(self.drain_timeout_s),
        ]  # fmt: skip
        if self.endpoint_config is not None:
            argv += ["--config", os.fspath(self.endpoint_config)]
        if self.allowed_serializers:
            argv += ["--allowed-serializers", ",".join(self.allowed_serializers)]
        self.endpoint = ChildProcess("endpoint", argv, self.state_dir / "endpoint.log")
        self.endpoint_id = self.endpoint.start()

    def stop(self) -> None:
        """Stop the endpoint, then the service; remove a temporary state dir.

        The agent lets running tasks finish for up to ``drain_timeout_s``, reports every
        result, hands back what is unfinished and says goodbye (the endpoint reads offline at
        once); whatever of its process group is left after that is killed.
        """
        if self.endpoint is not None:
            self.endpoint.stop(self.drain_timeout_s + AGENT_STOP_SLACK_S)
        if self.service is not None:
            self.service.stop()
        self.endpoint = self.service = None
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalCompute:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- handles ----------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> Client:
        """A ``Client`` for this service, authenticated as the default local user.

        It talks to the service over its Unix socket, so its token reaches only this service.
        """
        import globus_sdk

        from globus_compute.client import Client

        if self.socket_url is None or self.token is None:
            raise RuntimeError("LocalCompute is not running; use it as a context manager")
        authorizer = globus_sdk.AccessTokenAuthorizer(self.token)
        return Client(base_url=self.socket_url, authorizer=authorizer, **kwargs)

    def executor(self, **kwargs: Any) -> Executor:
        """An ``Executor`` bound to this endpoint (keyword arguments go to the Executor)."""
        from globus_compute.executor import Executor

        kwargs.setdefault("endpoint_id", self.endpoint_id)
        kwargs.setdefault("client", self.client())
        return Executor(**kwargs)

    def __repr__(self) -> str:
        return f"LocalCompute(base_url={self.base_url!r}, endpoint_id={self.endpoint_id!r})"


@contextlib.contextmanager
def local_or_hosted(workers: int = 2) -> Iterator[tuple[Client, str]]:
    """A ``(client, endpoint_id)`` pair for scripts that run anywhere.

    With ``GLOBUS_COMPUTE_ENDPOINT_ID`` set: a ``Client()`` of the hosted service (Globus Auth
    login on first use) and that endpoint. Otherwise: an embedded ``LocalCompute`` stack with
    ``workers`` workers, stopped when the block ends.
    """
    from globus_compute.client import Client

    endpoint_id = os.environ.get("GLOBUS_COMPUTE_ENDPOINT_ID")
    if endpoint_id:
        yield Client(), endpoint_id
        return
    with LocalCompute(workers=workers) as local:
        assert local.endpoint_id is not None
        yield local.client(), local.endpoint_id
