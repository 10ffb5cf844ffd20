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
    """A Client of ``BASE`` with ``TOKEN``, no construction-time version check and no request
    budget (``BASE`` is not loopback, and the tests' requests are free).

    It trusts every result (``trust_foreign_results``) unless told otherwise: the fake
    documents name no endpoint, and what the Client does about results of foreign endpoints
    is tested on its own (``test_client_results.py``, ``tests/security``).
    """
    kwargs.setdefault("do_version_check", False)
    kwargs.setdefault("request_budget", None)
    kwargs.setdefault("trust_foreign_results", True)
    return Client(base_url=BASE, authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN), **kwargs)
