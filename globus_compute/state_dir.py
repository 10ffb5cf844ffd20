"""Where the embedded service keeps its files, and how they are kept private.

Layout of a state dir::

    <state_dir>/                        0700, its owner's only
    <state_dir>/compute.db              the service's SQLite database (WAL mode), 0600
    <state_dir>/service.sock            the service's Unix socket, 0600 (``local_socket.py``)
    <state_dir>/tokens/<user>.token     bearer token of a local identity, 0600 in a 0700 dir
    <state_dir>/service.log             logs of a ``LocalCompute`` stack, 0600, bounded
    <state_dir>/endpoint.log            (``child_log.py``)

The service and ``globus-compute-local token`` write token files; ``Client(environment="local")``
reads the default user's token and connects to the socket, so a script works against
``globus-compute-local up`` with no configuration.

Other local users are the adversary on a shared machine, so every directory here is made
private whatever the umask: :func:`make_private_dir` creates it 0700, tightens an existing one
of ours that is wider (with a warning), and refuses with :class:`UnsafeStateDir` a directory
that another user could replace, because it or one of its parents belongs to them or is
writable by them without the sticky bit. Readers check the same with
:func:`require_private_dir` before they trust a token found there.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from globus_compute.errors import UnsafeStateDir

log = logging.getLogger(__name__)

DEFAULT_USER = "local"
DATABASE_NAME = "compute.db"
SOCKET_NAME = "service.sock"
TOKENS_DIR = "tokens"

#: Permission bits that let someone other than the owner in.
_NOT_OWNER = stat.S_IRWXG | stat.S_IRWXO
#: Permission bits that let someone other than the owner create, rename or delete entries.
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def user_dir() -> Path:
    """The reference SDK's user directory: ``$GLOBUS_COMPUTE_USER_DIR`` or ``~/.globus_compute``."""
    env = os.environ.get("GLOBUS_COMPUTE_USER_DIR")
    return Path(env) if env else Path.home() / ".globus_compute"


def default_state_dir() -> Path:
    """The embedded service's default state dir, ``<user_dir>/local``."""
    return user_dir() / "local"


def database_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / DATABASE_NAME


def socket_path(state_dir: str | os.PathLike[str]) -> Path:
    """The service's Unix socket: only the state dir's owner can reach it."""
    return Path(state_dir) / SOCKET_NAME


def token_path(state_dir: str | os.PathLike[str], user: str = DEFAULT_USER) -> Path:
    return Path(state_dir) / TOKENS_DIR / f"{user}.token"


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def _check_ancestors(directory: Path, parents: list[Path] | None = None) -> None:
    """Refuse ``directory`` if another user could replace it through one of its ``parents``.

    A parent lets others rename or delete our entry in it when they own it, or when they may
    write to it and it lacks the sticky bit (``/tmp`` has it, so ``/tmp/mine`` is safe while
    it is ours).
    """
    for parent in directory.parents if parents is None else parents:
        st = parent.stat()
        if not _trusted_owner(st.st_uid):
            raise UnsafeStateDir(
                f"{directory} is inside {parent}, which belongs to uid {st.st_uid}: that user "
                "could replace it. Keep the state dir under a directory of your own."
            )
        if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
            raise UnsafeStateDir(
                f"{directory} is inside {parent}, which other users may write to "
                f"(mode {stat.S_IMODE(st.st_mode):04o}, no sticky bit): they could replace it. "
                f"Run `chmod go-w {parent}` or choose a state dir elsewhere."
            )


def _check_own_dir(directory: Path, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateDir(f"{directory} is not a directory")
    if st.st_uid != os.geteuid():
        raise UnsafeStateDir(
            f"{directory} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}): its owner "
            "could read every token and payload in it. Choose a state dir of your own."
        )


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` a directory only its owner may enter, and return it.

    Missing directories (parents included) are created 0700 whatever the umask. An existing
    directory of ours with wider permissions is tightened to 0700, with a warning. Symbolic
    links are followed; the checks apply to the real directory.

    Raises:
        UnsafeStateDir: ``path`` belongs to another user, or another user could replace it (a
            parent of theirs, or one they may write to without the sticky bit).
    """
    directory = Path(os.path.abspath(path))
    missing: list[Path] = []
    existing = directory
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    if missing:
        # Checked before anything is created in it: the deepest existing directory is a parent.
        real = existing.resolve()
        _check_ancestors(directory, [real, *real.parents])
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            continue  # created meanwhile; checked below like any existing directory
        os.chmod(new, 0o700)  # mkdir's mode is filtered by the umask
    directory = directory.resolve()
    _check_ancestors(directory)
    st = directory.stat()
    _check_own_dir(directory, st)
    if st.st_mode & _NOT_OWNER:
        log.warning(
            "%s had mode %04o; tightened to 0700 (it holds tokens and task data)",
            directory,
            stat.S_IMODE(st.st_mode),
        )
        os.chmod(directory, 0o700)
    return directory


def require_private_dir(path: str | os.PathLike[str]) -> Path:
    """Check, without changing anything, that nobody else controls the directory ``path``.

    Unlike :func:`make_private_dir` this accepts a directory others may read (a reader only
    needs to know that the token in it was put there by its owner), but not one they may
    write to or replace.

    Raises:
        UnsafeStateDir: As :func:`make_private_dir`, or ``path`` is writable by others.
        FileNotFoundError: ``path`` does not exist.
    """
    directory = Path(path).resolve(strict=True)
    _check_ancestors(directory)
    st = directory.stat()
    _check_own_dir(directory, st)
    if st.st_mode & _OTHERS_WRITE:
        raise UnsafeStateDir(
            f"{directory} may be written by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
            "a token found there cannot be trusted. Run `chmod 700` on it."
        )
    return directory


def open_private_file(path: Path, flags: int) -> int:
    """``os.open`` a file readable by its owner only: created 0600, an existing one tightened.

    Raises:
        UnsafeStateDir: The file exists and belongs to another user.
    """
    fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise UnsafeStateDir(f"{path} belongs to uid {st.st_uid}, not to you")
        if st.st_mode & _NOT_OWNER:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only, in a private directory."""
    make_private_dir(path.parent)
    fd = open_private_file(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


def read_token_file(path: Path) -> str | None:
    """The token stored at ``path``, or None if there is none.

    Raises:
        UnsafeStateDir: The file belongs to another user (a token planted by someone else
            would make us act as them).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as f:
        owner = os.fstat(f.fileno()).st_uid
        if owner != os.geteuid():
            raise UnsafeStateDir(f"{path} belongs to uid {owner}, not to you; not using it")
        return f.read().strip() or None
