"""Where the embedded service keeps its files, and where clients find a local token.

Layout of a state dir::

    <state_dir>/compute.db              the service's SQLite database (WAL mode)
    <state_dir>/tokens/<user>.token     bearer token of a local identity, mode 0600

The service and ``globus-compute-local token`` write token files; ``Client(environment="local")``
reads the default user's token, so a script works against ``globus-compute-local up`` with no
configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_USER = "local"
DATABASE_NAME = "compute.db"


def user_dir() -> Path:
    """The reference SDK's user directory: ``$GLOBUS_COMPUTE_USER_DIR`` or ``~/.globus_compute``."""
    env = os.environ.get("GLOBUS_COMPUTE_USER_DIR")
    return Path(env) if env else Path.home() / ".globus_compute"


def default_state_dir() -> Path:
    """The embedded service's default state dir, ``<user_dir>/local``."""
    return user_dir() / "local"


def database_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / DATABASE_NAME


def token_path(state_dir: str | os.PathLike[str], user: str = DEFAULT_USER) -> Path:
    return Path(state_dir) / "tokens" / f"{user}.token"


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)


def read_token_file(path: Path) -> str | None:
    """The token stored at ``path``, or None if there is none."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
