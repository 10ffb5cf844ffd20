"""The Executor on its hosted code paths against the embedded service's real rate limit.

The service runs with ``--rate-limit 5 --rate-burst 5`` (the hosted service's rule, scaled to
keep the test short); the Client has a request budget and no long polls, as against the hosted
service. Under the limit the budget keeps every request clear of a 429; when another client of
the same identity (here a plain HTTP session, as another process would be) eats the budget,
the 429s that follow are waited out and resent, and no future fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import globus_sdk
import pytest
import requests

from globus_compute import Client
from globus_compute.local import LocalCompute
from globus_compute.serialize import PureSourceTextInspect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROUNDS, PER_ROUND = 5, 20


def triple(x: int) -> int:
    return 3 * x


def hosted_paths_client(local: LocalCompute, budget: str) -> Client:
    assert local.base_url is not None and local.token is not None
    return Client(
        base_url=local.base_url,
        authorizer=globus_sdk.AccessTokenAuthorizer(local.token),
        code_serialization_strategy=PureSourceTextInspect(),
        request_budget=budget,
        long_poll=False,
    )


def run_rounds(local: LocalCompute, client: Client) -> list[int]:
    """Submit and collect ``ROUNDS`` rounds, so submits and polls interleave."""
    results: list[int] = []
    with local.executor(client=client, poll_interval_s=0.1) as ex:
        for r in range(ROUNDS):
            futures = [ex.submit(triple, r * PER_ROUND + i) for i in range(PER_ROUND)]
            results += [f.result(timeout=60) for f in futures]
    return results


@pytest.fixture
def limited(local_stack: Callable[..., LocalCompute]) -> LocalCompute:
    return local_stack(workers=2, service_args=["--rate-limit", "5", "--rate-burst", "5"])


def test_a_budget_under_the_service_limit_draws_no_429(limited: LocalCompute) -> None:
    client = hosted_paths_client(limited, "4/1")
    assert run_rounds(limited, client) == [3 * x for x in range(ROUNDS * PER_ROUND)]
    assert client.request_budget is not None
    assert client.request_budget.rate_limited == 0
    assert sum(client.request_budget.granted.values()) >= ROUNDS * 2  # a submit and a poll each


def test_429s_from_another_client_of_the_identity_fail_no_future(limited: LocalCompute) -> None:
    client = hosted_paths_client(limited, "4/1")
    stop = threading.Event()

    def other_process() -> None:
        """Spend the identity's requests behind the budget's back, for a few seconds."""
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {limited.token}"
            for _ in range(300):
                if stop.wait(0.02):
                    return
                session.get(f"{limited.base_url}/v2/endpoints", timeout=10)

    hog = threading.Thread(target=other_process, name="other-process-of-the-identity")
    hog.start()
    try:
        results = run_rounds(limited, client)
    finally:
        stop.set()
        hog.join(30)
    assert results == [3 * x for x in range(ROUNDS * PER_ROUND)]
    assert client.request_budget is not None
    assert client.request_budget.rate_limited > 0  # the 429s did come, and were waited out
