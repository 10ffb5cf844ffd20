"""Our Client over a fake transport, as the functional tests build it.

The functional tests drive ``globus_compute.Client`` against ``responses`` (a fake of the
``requests`` transport globus-sdk sends through), so every request is checked byte for byte and
no socket is opened. ``tests/conftest.py`` turns these into the ``rsps`` and ``client``
fixtures.
"""

from __future__ import annotations

from typing import Any

import globus_sdk

from globus_compute.client import Client

#: The service URL of every functional test; nothing listens there.
BASE = "https://compute.test"
#: The bearer token the fake transport sees.
TOKEN = "tok-123"


def make_client(**kwargs: Any) -> Client:
    """A Client of ``BASE`` with ``TOKEN`` and no construction-time version check."""
    kwargs.setdefault("do_version_check", False)
    return Client(base_url=BASE, authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN), **kwargs)
