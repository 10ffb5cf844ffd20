"""Another user of the same machine against the embedded stack (issue 15).

Why: the embedded service runs on login nodes, lab servers and CI runners, where the other
local users are the first adversary. Each test here is an attack run as user ``nobody``
(``tests.support.other_user``) against a stack run by the test's user, and fails if it works:

1. reading a bearer token off a command line (``ps``);
2. squatting the local environment's port to receive the token and answer in the service's
   place, and listening on the service's socket as someone else;
3. reading or replacing what the state dir holds: tokens, the database, the logs with the
   ``print`` output of tasks, under umask 000 and in directories that existed with wider modes;
   and filling the disk through an unbounded log.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest

from globus_compute import Client, Executor, local_socket
from globus_compute import state_dir as layout
from globus_compute.child_log import DEFAULT_MAX_BYTES
from globus_compute.errors import UnsafeStateDir
from globus_compute.local import LocalCompute
from tests.support.other_user import (
    as_other_user,
    attacker_env,
    require_other_user,
    run_as_other_user,
    shared_dir,
    start_as_other_user,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def shared() -> Iterator[Path]:
    require_other_user()
    with shared_dir() as path:
        yield path


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of ``proc`` within ``timeout`` seconds ("" if none)."""
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


# -- 1. tokens on command lines -----------------------------------------------------------------

SCAN_COMMAND_LINES = textwrap.dedent(
    """
    import json, os, subprocess
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    cmdlines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdlines.append(f.read().replace(b"\\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    environ_readable = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ_readable.append(pid)
        except OSError:
            pass
    print(json.dumps({"ps": ps, "cmdlines": cmdlines, "environ_readable": environ_readable}))
    """
)


def test_no_token_is_on_any_command_line_another_user_can_read(shared: Path) -> None:
    """Regression (issue 15): LocalCompute and ``globus-compute-local endpoint`` started the
    agent with ``--token TOKEN``, even when the token came from the 0600 file; ``nobody`` read
    it with ``ps`` and used it."""
    state = shared / "state"
    with LocalCompute(workers=1, state_dir=state) as local:
        assert local.token and local.endpoint is not None
        agent_pid = str(local.endpoint.pid)
        seen_first = run_as_other_user(SCAN_COMMAND_LINES)
        assert local.token not in seen_first["ps"] + "\n".join(seen_first["cmdlines"])
        cli_endpoint = subprocess.Popen(
            [sys.executable, "-m", "globus_compute.cli", "endpoint", "--state-dir", str(state),
             "--name", "from-the-cli", "--workers", "1"],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            assert _read_line(cli_endpoint, 60), "the CLI endpoint printed no endpoint id"
            seen = run_as_other_user(SCAN_COMMAND_LINES)
        finally:
            cli_endpoint.terminate()
            cli_endpoint.wait(30)
            assert cli_endpoint.stdout is not None
            cli_endpoint.stdout.close()
        with local.executor() as ex:
            assert ex.submit(pow, 2, 5).result(timeout=60) == 32  # the agents work as before
    # The attacker does see our processes and their arguments, just no token in them ...
    everything = seen["ps"] + "\n".join(seen["cmdlines"])
    assert "globus_compute.endpoint" in everything and "from-the-cli" in everything
    assert "--token-file" in everything
    assert local.token not in everything
    # ... and the environment of our processes (where a token may be passed) is not theirs.
    assert agent_pid not in seen["environ_readable"]


def test_token_on_the_command_line_is_refused_with_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "globus_compute.endpoint", "--service-url", "http://127.0.0.1:9",
         "--name", "x", "--token", "s3cret"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--token is not accepted" in done.stderr and "--token-file" in done.stderr


def test_token_from_the_environment_is_not_inherited_by_the_workers(tmp_path: Path) -> None:
    """``$GLOBUS_COMPUTE_TOKEN`` is the other way in; tasks (maybe other identities' code, on
    a public endpoint) must not find it in their environment."""
    with LocalCompute(workers=1, state_dir=tmp_path / "state") as local:
        assert local.token and local.socket_url
        agent = subprocess.Popen(
            [sys.executable, "-m", "globus_compute.endpoint", "--service-url", local.socket_url,
             "--name", "from-env", "--workers", "1"],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
            env=dict(os.environ, GLOBUS_COMPUTE_TOKEN=local.token),
        )  # fmt: skip

        def token_seen_by_a_task() -> str:
            import os

            return os.environ.get("GLOBUS_COMPUTE_TOKEN", "absent")

        try:
            endpoint_id = _read_line(agent, 60)
            assert endpoint_id
            with local.executor(endpoint_id=endpoint_id) as ex:
                assert ex.submit(token_seen_by_a_task).result(timeout=60) == "absent"
        finally:
            agent.terminate()
            agent.wait(30)
            assert agent.stdout is not None
            agent.stdout.close()


# -- 2. port squatting --------------------------------------------------------------------------

SQUATTER = textwrap.dedent(
    """
    import json, socket, sys, time
    sock = socket.socket()
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen(16)
    sock.settimeout(0.2)
    print("LISTENING", flush=True)
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        conn.settimeout(2)
        try:
            print(json.dumps(conn.recv(65536).decode(errors="replace")), flush=True)
            body = b'{"api": "1", "min_sdk_version": "1.0.0", "min_ep_version": "1.0.0"}'
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                         b"Content-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
        except OSError:
            pass
        conn.close()
    """
)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_local_environment_never_sends_its_token_to_a_port_squatter(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 15): ``Client(environment="local")`` sent its bearer token to whatever
    listened on ``localhost:5000``; a process of ``nobody`` started there first received it, and
    its answers (result strings included) would have been trusted and unpickled."""
    if not _port_is_free(5000):
        pytest.skip("port 5000 (the reference local environment's port) is in use here")
    user_dir = shared / "user"
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(user_dir))
    monkeypatch.delenv("GLOBUS_SDK_SERVICE_URL_COMPUTE", raising=False)
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)
    squatter = start_as_other_user(SQUATTER, "5000", "20")
    token, listed, total = "", set(), None
    try:
        assert _read_line(squatter, 30) == "LISTENING"
        # The user's own service runs (on another TCP port, as `up` would after finding 5000
        # taken), with the default state dir.
        with LocalCompute(workers=1, state_dir=layout.default_state_dir()) as local:
            token = local.token or ""
            client = Client(environment="local")
            listed = {e["uuid"] for e in client.get_endpoints() if isinstance(e, dict)}
            if local.endpoint_id in listed:
                with Executor(endpoint_id=local.endpoint_id, client=client) as ex:
                    total = ex.submit(sum, [1, 2, 3]).result(timeout=60)
            endpoint_id = local.endpoint_id
    finally:
        squatter.terminate()
        out, _ = squatter.communicate(timeout=30)
    received = out.strip()  # one JSON line per request the squatter got
    assert token and token not in received, "the squatter received the token"
    assert received == "", f"the squatter was contacted: {received[:300]}"
    assert endpoint_id in listed and total == 6  # the Client talked to the real service


LISTEN_ON_INHERITED_SOCKET = textwrap.dedent(
    """
    import socket, sys, time
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.listen(4)
    print("LISTENING", flush=True)
    sock.settimeout(20)
    try:
        conn, _ = sock.accept()
        conn.recv(1024)
    except OSError:
        pass
    """
)


def test_a_socket_listened_on_by_another_user_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """Each connection to the service socket checks the listener's uid (``SO_PEERCRED``), so
    even a socket in our own directory is not trusted if another user listens on it."""
    require_other_user()
    if not hasattr(socket, "SO_PEERCRED"):
        pytest.skip("this system has no SO_PEERCRED")
    state = layout.make_private_dir(tmp_path / "state")
    path = layout.socket_path(state)
    bound = local_socket.bind(path)  # ours, in our dir; the other user gets only the listener
    listener = subprocess.Popen(
        as_other_user([sys.executable, "-I", "-c", LISTEN_ON_INHERITED_SOCKET,
                       str(bound.fileno())]),
        stdout=subprocess.PIPE, text=True, env=attacker_env(), cwd="/",
        pass_fds=(bound.fileno(),),
    )  # fmt: skip
    try:
        assert _read_line(listener, 30) == "LISTENING"
        with pytest.raises(UnsafeStateDir, match="runs as uid"):
            local_socket.connect(path, timeout=10)
        # Through a Client the refusal surfaces as itself, not as a network error to retry.
        client = Client(
            base_url=local_socket.socket_url(path),
            authorizer=globus_sdk.AccessTokenAuthorizer("would-be-stolen"),
            do_version_check=False,
        )
        with pytest.raises(UnsafeStateDir):
            client.get_endpoints()
    finally:
        bound.close()
        listener.kill()
        listener.communicate(timeout=30)


# -- 3. the state dir and the logs --------------------------------------------------------------

VICTIM = textwrap.dedent(
    """
    import os, sys
    os.umask(0)  # the worst case the README promises to cover
    from globus_compute.local import LocalCompute

    def confide():
        print("my secret is hunter2", flush=True)
        return 1

    def chatter(megabytes):
        import sys
        line = "x" * 1023 + "\\n"
        for _ in range(megabytes * 1024):
            sys.stdout.write(line)
        sys.stdout.flush()
        return megabytes

    with LocalCompute(workers=1, state_dir=sys.argv[1]) as local:
        with local.executor() as ex:
            assert ex.submit(chatter, int(sys.argv[2])).result(timeout=90) == int(sys.argv[2])
            assert ex.submit(confide).result(timeout=60) == 1
        print("READY", flush=True)
        sys.stdin.readline()
    """
)

PROBE_STATE_DIR = textwrap.dedent(
    """
    import json, os, sys
    state = sys.argv[1]
    attempts = {
        "list the state dir": lambda: os.listdir(state),
        "read endpoint.log": lambda: open(os.path.join(state, "endpoint.log")).read(100),
        "read service.log": lambda: open(os.path.join(state, "service.log")).read(100),
        "read the database": lambda: open(os.path.join(state, "compute.db"), "rb").read(100),
        "read the token": lambda: open(os.path.join(state, "tokens", "local.token")).read(),
        "replace tokens/": lambda: os.rename(os.path.join(state, "tokens"), state + "-t"),
        "delete the database": lambda: os.unlink(os.path.join(state, "compute.db")),
        "connect to the socket": lambda: __import__("socket").socket(
            __import__("socket").AF_UNIX).connect(os.path.join(state, "service.sock")),
    }
    done = {}
    for what, attempt in attempts.items():
        try:
            attempt()
            done[what] = "succeeded"
        except PermissionError:
            done[what] = "denied"
        except OSError as exc:
            done[what] = f"failed: {exc!r}"
    print(json.dumps(done))
    """
)


def test_state_dir_logs_and_task_output_are_private_and_bounded_under_umask_0(
    shared: Path,
) -> None:
    """Regression (issue 15): under ``globus-compute-local up`` and ``LocalCompute(state_dir=)``
    the state dir was 0755 (0777 under umask 000), ``service.log``/``endpoint.log`` 0644
    (0666), a task's ``print("my secret is hunter2")`` landed in ``endpoint.log`` for anyone
    to read, and a task printing 50 MB grew it by 48 MB."""
    state = shared / "state"
    printed_mb = 5 * DEFAULT_MAX_BYTES // (1024 * 1024)  # 50 MB
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, str(state), str(printed_mb)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _read_line(victim, 110) == "READY"
        probes = run_as_other_user(PROBE_STATE_DIR, str(state))
        modes = {
            str(p.relative_to(state)): stat.S_IMODE(p.lstat().st_mode)
            for p in [state, *state.rglob("*")]
        }
        logs = [p for p in (state / "endpoint.log", state / "endpoint.log.1") if p.exists()]
        sizes = [p.stat().st_size for p in logs]
        logged = "".join(p.read_text() for p in logs)
    finally:
        assert victim.stdin is not None
        victim.stdin.write("\n")
        victim.stdin.close()
        victim.wait(60)
        assert victim.stdout is not None
        victim.stdout.close()
    assert all(outcome == "denied" for outcome in probes.values()), probes
    assert state.exists() and (state / "compute.db").exists()
    private = {name: mode for name, mode in modes.items() if mode in (0o700, 0o600)}
    assert private == modes, {n: oct(m) for n, m in modes.items() if n not in private}
    assert modes["."] == 0o700 and modes["tokens"] == 0o700 and modes["endpoint.log"] == 0o600
    # The tasks' output is there for its owner, bounded: at most the log and one backup.
    assert "my secret is hunter2" in logged and "x" * 1023 in logged
    assert max(sizes) <= DEFAULT_MAX_BYTES and sum(sizes) <= 2 * DEFAULT_MAX_BYTES, sizes


def test_existing_state_dir_of_ours_is_tightened_and_others_are_refused(shared: Path) -> None:
    """An existing state dir of ours with wider modes is tightened to 0700 (with a
    warning); a dir another user owns, or could replace through its parent, is refused."""
    wide = shared / "wide"
    token = ""
    for _run in range(2):  # a new identity, then one whose token file is already there
        if _run:
            os.chmod(wide, 0o777)  # as an older version, or a umask of 000, left them
            os.chmod(wide / "tokens", 0o755)
            os.chmod(layout.token_path(wide), 0o644)
            os.chmod(layout.database_path(wide), 0o644)
        with LocalCompute(workers=1, state_dir=wide) as local:
            client = local.client()
            assert client.get_endpoint_status(local.endpoint_id or "")["status"] == "online"
            assert local.token and local.token == (token or local.token)  # kept on the rerun
            token = local.token
        for path, mode in (
            (wide, 0o700),
            (wide / "tokens", 0o700),
            (layout.token_path(wide), 0o600),
            (layout.database_path(wide), 0o600),
        ):
            assert stat.S_IMODE(path.stat().st_mode) == mode, path  # fmt: skip

    theirs = shared / "theirs"
    theirs.mkdir()
    nobody = 65534
    os.chown(theirs, nobody, nobody)
    with pytest.raises(UnsafeStateDir, match="belongs to uid 65534"):
        LocalCompute(state_dir=theirs).start()

    open_parent = shared / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)  # anyone may rename what is inside: no sticky bit
    with pytest.raises(UnsafeStateDir, match="no sticky bit"):
        LocalCompute(state_dir=open_parent / "state").start()
    assert not (open_parent / "state").exists()  # refused before anything was created
    os.chmod(open_parent, 0o1777)  # like /tmp: the sticky bit keeps our entries ours
    assert layout.make_private_dir(open_parent / "state") == open_parent / "state"


def test_local_client_refuses_a_token_another_user_could_have_planted(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_dir = shared / "user"
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(user_dir))
    tokens = layout.token_path(layout.default_state_dir())
    layout.write_token_file(tokens, "planted?")
    os.chmod(tokens.parent, 0o777)
    with pytest.raises(UnsafeStateDir, match="may be written by other users"):
        Client(environment="local", do_version_check=False)
    os.chmod(tokens.parent, 0o700)
    os.chown(tokens, 65534, 65534)
    with pytest.raises(UnsafeStateDir, match="belongs to uid 65534"):
        Client(environment="local", do_version_check=False)


def test_child_log_rotates_before_it_crosses_its_bound(tmp_path: Path) -> None:
    from globus_compute.child_log import ChildLog

    log = ChildLog(tmp_path / "x.log", max_bytes=1000)
    for i in range(50):
        log.write(f"line {i:03d} " + "y" * 90 + "\n")  # 100 bytes each
    log.close()
    current, backup = tmp_path / "x.log", tmp_path / "x.log.1"
    assert current.stat().st_size <= 1000 and backup.stat().st_size <= 1000
    assert "line 049" in current.read_text() and "line 039" in backup.read_text()
    assert stat.S_IMODE(current.stat().st_mode) == 0o600
    started = time.monotonic()
    assert log.tail(3).splitlines()[-1].startswith("line 049")
    assert time.monotonic() - started < 5
