"""Bearer tokens of local identities: how one is drawn, and the only form the service keeps.

The database holds the sha256 of each token, never the token, so a leaked database grants
nothing; the token itself lives in a 0600 file of the state dir (see ``state_dir.py``).
"""

from __future__ import annotations

import hashlib
import secrets


def hash_token(token: str) -> str:
    """The stored form of a bearer token (also the rate limiter's key for its bearer)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh bearer token that never starts with "-".

    Tokens no longer travel on command lines (every local user can read those), but one
    pasted into a tool's option must still not read as an option: argparse takes a leading
    dash for one, and one token in 64 would start with it.
    """
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token
