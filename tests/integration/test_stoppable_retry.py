"""``stoppable_retry_config``: a Compute client call to a dead service ends once told to."""

from __future__ import annotations

import socket
import threading
import time

import globus_sdk
import pytest

from globus_compute.client.stoppable_retry import stoppable_retry_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _dead_url() -> str:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_retrying_call_ends_soon_after_the_stop_event() -> None:
    stop = threading.Event()
    client = globus_sdk.ComputeClientV2(
        base_url=_dead_url(), retry_config=stoppable_retry_config(stop, max_sleep=30)
    )
    failed: list[BaseException] = []

    def call() -> None:
        try:
            client.get_version()
        except Exception as exc:  # the connection error of the last try
            failed.append(exc)

    caller = threading.Thread(target=call, name="test-retrying-call")
    caller.start()
    caller.join(1.0)
    assert caller.is_alive(), "the call should still be retrying"
    stopped_at = time.monotonic()
    stop.set()
    caller.join(10)
    assert not caller.is_alive()
    assert time.monotonic() - stopped_at < 2
    assert failed and isinstance(failed[0], globus_sdk.GlobusConnectionError)


def test_without_a_stop_the_retries_follow_the_settings() -> None:
    stop = threading.Event()
    config = stoppable_retry_config(stop, max_retries=2, max_sleep=0.05)
    client = globus_sdk.ComputeClientV2(base_url=_dead_url(), retry_config=config)
    started = time.monotonic()
    with pytest.raises(globus_sdk.GlobusConnectionError):
        client.get_version()
    assert time.monotonic() - started < 5
