"""The Client's two hot requests (submit, batch_status) over keep-alive connections.

Every task the Executor runs costs a share of one submit and one ``batch_status``; a lone task
costs one of each, on its critical path. Through globus-sdk, ``requests`` and ``urllib3`` a small
request cost the client about 0.7-0.9 ms of CPU on the shared 2-core development machine, most
of it in ``Session.send``, the adapter, the pool and the response object, not in building the
request (``time.process_time`` and cProfile over 500 ``batch_status`` calls to the embedded
service's socket).

:class:`HotPath` builds each request exactly as globus-sdk does, with globus-sdk's own public
pieces: the transport's headers, its JSON representation provider (the same encoder, so the
same body bytes), the client's authorizer for the ``Authorization`` header, and the same URL.
It then writes the prepared request on a :class:`~globus_compute.keepalive.KeepAliveConnection`
(one per thread) instead of handing it to ``requests``. The service sees the same request line,
headers, in the same order, and body (``tests/integration/test_client_hot_path.py`` compares
the raw bytes).

Only what globus-sdk would have done with the answer is kept, and where that is more than
raising, globus-sdk does it:

- 2xx: the body is the answer;
- a connection failure, 401 (an authorizer that can refresh its token gets to), 502, 503 or 504:
  the request is sent again through globus-sdk, which retries, refreshes and backs off as it
  always does (a resend, like its own retries; our routes are the embedded service's, whose
  submit is durable before it answers);
- any other status: globus-sdk's error for that answer (``client.error_class``), so the
  Client's 429 handling and request budget (``Client._request``) see what they always saw.

It is used for the embedded service's Unix socket only (``Client`` decides): that is the
owner's own service and a static token; hosted calls keep globus-sdk's whole path.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import urllib.parse
from typing import Any, cast

import globus_sdk
import requests
from requests.structures import CaseInsensitiveDict

from globus_compute.keepalive import KeepAliveConnection, Reply

log = logging.getLogger(__name__)

__all__ = ["HotPath"]

#: Answers sent again through globus-sdk, which knows what to do with them (see the module doc).
_RESEND_STATUSES = frozenset({401, 502, 503, 504})


class HotPath:
    """POST requests of one globus-sdk client over keep-alive connections.

    Args:
        client: The globus-sdk client whose base URL, transport, encoder and authorizer are
            used; its base URL must be one :mod:`globus_compute.keepalive` supports.
    """

    def __init__(self, client: globus_sdk.BaseClient) -> None:
        self.client = client
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[KeepAliveConnection] = []

    def post(self, path: str, data: Any, query_params: dict[str, Any] | None = None) -> bytes:
        """The body of globus-sdk's answer to ``client.post(path, data=..., query_params=...)``.

        Raises:
            globus_sdk.GlobusAPIError: As ``client.post`` raises it.
        """
        sdk = self.client
        url = sdk.base_url.rstrip("/") + "/" + urllib.parse.quote(path).lstrip("/")
        request = sdk.transport.json_provider.encode(
            "POST", url, query_params, data, {**sdk.transport.headers}
        )
        if sdk.authorizer is not None:
            header = sdk.authorizer.get_authorization_header()
            if header:
                cast(dict[str, str], request.headers)["Authorization"] = header
        prepared = request.prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        headers = {
            k: v.decode("latin-1") if isinstance(v, bytes) else v
            for k, v in prepared.headers.items()
        }
        connection = self._connection()
        headers["Host"] = connection.host  # urllib3 writes it last
        timeout = sdk.transport.http_timeout
        try:
            reply = connection.request(
                "POST",
                prepared.path_url,
                cast("bytes | None", body),
                headers,
                None if timeout is None or timeout < 0 else timeout,
            )
        except (OSError, http.client.HTTPException) as exc:
            log.debug("POST %s failed on its keep-alive connection (%r); resent", path, exc)
            return self._through_sdk(path, data, query_params)
        if 200 <= reply.status < 300:
            return reply.body
        if reply.status in _RESEND_STATUSES:
            return self._through_sdk(path, data, query_params)
        raise sdk.error_class(_as_response(reply, prepared))

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _through_sdk(self, path: str, data: Any, query_params: dict[str, Any] | None) -> bytes:
        return self.client.post(path, data=data, query_params=query_params).binary_content

    def _connection(self) -> KeepAliveConnection:
        """This thread's connection; a forked child makes its own (it must not share the
        parent's sockets)."""
        mine = getattr(self._local, "connection", None)
        if mine is None or self._local.pid != os.getpid():
            mine = KeepAliveConnection(self.client.base_url)
            self._local.connection, self._local.pid = mine, os.getpid()
            with self._lock:
                self._connections.append(mine)
        return mine


def _as_response(reply: Reply, prepared: requests.PreparedRequest) -> requests.Response:
    """``reply`` as the ``requests.Response`` globus-sdk's errors are built from."""
    response = requests.Response()
    response.status_code = reply.status
    response.headers = CaseInsensitiveDict(reply.headers.items())
    response._content = reply.body
    response.url = prepared.url or ""
    response.request = prepared
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    return response
