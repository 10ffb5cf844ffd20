"""The Executor against the hosted service's limits, rehearsed on this machine.

``python -m benchmarks --hosted``. The embedded service enforces the hosted rate limit
(``--rate-limit 2 --rate-burst 20``: 20 requests per 10 s per token, 429 with ``Retry-After``
beyond); the Client reaches it through :class:`~benchmarks.latency_proxy.LatencyProxy`
(30-80 ms added to every request) and takes exactly the code paths it takes against the hosted
service: the default remote request budget (``DEFAULT_REMOTE_RATE``, 19 per 10 s) and no
long polls (``long_poll=False``). The proxy counts the requests by kind and the 429s, so the
figures do not rest on the client's own account.

The ceiling is what the budget allows if every request were a full submit: 20 requests per
10 s x 128 tasks = 256 tasks/s. Results cost requests too (polls), and the first 20 requests
of a workload come from the burst, so short workloads can pass the ceiling; long ones cannot.
Each workload starts after the budgets have refilled, as a fresh script would.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import globus_sdk

from benchmarks.harness import Figure, Report, percentile
from benchmarks.latency_proxy import LatencyProxy
from benchmarks.tasks import noop, result_100kb, sleep_10ms
from globus_compute.client import Client
from globus_compute.client.request_budget import DEFAULT_REMOTE_RATE
from globus_compute.executor import Executor

#: The hosted limit as the embedded service enforces it here.
RATE_PER_S, BURST = 2.0, 20
CEILING = RATE_PER_S * 128  # tasks/s: every request a full 128-task submit
#: Seconds between workloads: both token buckets are full again after 10 s.
SETTLE_S = 11.0
WORKERS = 8  # 10 ms tasks at ~250/s keep about three workers busy; sleeping costs no core


@dataclass
class Outcome:
    """What one workload did."""

    tasks: int
    elapsed_s: float
    failed: int
    latencies_s: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.tasks / self.elapsed_s


def _failed(futures: list[concurrent.futures.Future]) -> int:
    return sum(1 for f in futures if f.exception() is not None)


def five_thousand_10ms(ex: Executor) -> Outcome:
    ex.register_function(sleep_10ms)
    start = time.perf_counter()
    futures = [ex.submit(sleep_10ms) for _ in range(5_000)]
    for _ in concurrent.futures.as_completed(futures):
        pass
    return Outcome(5_000, time.perf_counter() - start, _failed(futures))


def twenty_thousand_map(ex: Executor) -> Outcome:
    ex.register_function(noop)
    start = time.perf_counter()
    failed = 0
    try:
        count = sum(1 for _ in ex.map(noop, range(20_000), chunksize=1))
    except Exception:
        count, failed = 0, 20_000  # map stops at the first failed future: count all as lost
    return Outcome(count or 20_000, time.perf_counter() - start, failed)


def five_hundred_100kb(ex: Executor) -> Outcome:
    ex.register_function(result_100kb)
    start = time.perf_counter()
    futures = [ex.submit(result_100kb) for _ in range(500)]
    for _ in concurrent.futures.as_completed(futures):
        pass
    return Outcome(500, time.perf_counter() - start, _failed(futures))


def trickle(ex: Executor, every_s: float = 0.3, for_s: float = 60.0) -> Outcome:
    """One task every ``every_s`` for ``for_s``: submit-to-result latency of each."""
    ex.register_function(noop)
    latencies: list[float] = []
    lock = threading.Lock()
    futures = []
    start = time.perf_counter()
    next_at = start
    while next_at < start + for_s:
        time.sleep(max(0.0, next_at - time.perf_counter()))
        sent = time.perf_counter()
        future = ex.submit(noop)

        def done(_: object, sent: float = sent) -> None:
            with lock:
                latencies.append(time.perf_counter() - sent)

        future.add_done_callback(done)
        futures.append(future)
        next_at += every_s
    concurrent.futures.wait(futures, timeout=120)
    return Outcome(len(futures), time.perf_counter() - start, _failed(futures), latencies)


def three_executors(make_executor: Callable[[], Executor], each: int = 4_000) -> Outcome:
    """Three Executors, each with its own Client of one identity, submitting at once."""
    executors = [make_executor() for _ in range(3)]
    for ex in executors:
        ex.register_function(noop)
    futures: list[list[concurrent.futures.Future]] = [[] for _ in executors]
    go = threading.Barrier(len(executors) + 1)

    def flood(i: int) -> None:
        go.wait()
        futures[i] = [executors[i].submit(noop) for _ in range(each)]
        concurrent.futures.wait(futures[i])

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(len(executors))]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for ex in executors:
        ex.shutdown()
    return Outcome(each * len(executors), elapsed, sum(_failed(f) for f in futures))


def _measure(proxy: LatencyProxy, work: Callable[[], Outcome]) -> Outcome:
    before_requests, before_statuses = proxy.counts()
    outcome = work()
    after_requests, after_statuses = proxy.counts()
    outcome.requests = after_requests - before_requests
    outcome.statuses = after_statuses - before_statuses
    return outcome


def _notes(outcome: Outcome) -> str:
    order = ("submit", "poll", "register", "version", "other")
    kinds = " ".join(f"{k}={outcome.requests[k]}" for k in order if outcome.requests[k])
    per_s = sum(outcome.requests.values()) / outcome.elapsed_s
    return (
        f"share {outcome.rate / CEILING:.0%}; requests {kinds} ({per_s:.2f}/s); "
        f"429s={outcome.statuses[429]}; failed={outcome.failed}"
    )


def run(report: Report, only: set[str] | None = None) -> None:
    """Run the workloads (those named in ``only``, if given) and add their figures."""
    from globus_compute.local import LocalCompute

    service_args = ["--rate-limit", f"{RATE_PER_S:g}", "--rate-burst", str(BURST)]
    with LocalCompute(workers=WORKERS, service_args=service_args) as local:
        assert local.base_url is not None and local.token is not None
        upstream = int(local.base_url.rsplit(":", 1)[1])
        with LatencyProxy(upstream) as proxy:

            def client() -> Client:
                return Client(
                    base_url=proxy.url,
                    authorizer=globus_sdk.AccessTokenAuthorizer(local.token),  # type: ignore[arg-type]
                    request_budget=DEFAULT_REMOTE_RATE,
                    long_poll=False,
                )

            def executor() -> Executor:
                return Executor(endpoint_id=local.endpoint_id, client=client())

            def with_executor(work: Callable[[Executor], Outcome]) -> Callable[[], Outcome]:
                def run_it() -> Outcome:
                    with executor() as ex:
                        return work(ex)

                return run_it

            w = with_executor

            def three() -> Outcome:
                return three_executors(executor)

            workloads: dict[str, tuple[str, Callable[[], Outcome], float | None]] = {
                "10ms": ("5,000 x 10 ms, submit + as_completed", w(five_thousand_10ms), 0.9),
                "map": ("20,000 no-op, map(chunksize=1)", w(twenty_thousand_map), 0.9),
                "100kb": ("500 tasks returning 100 KB", w(five_hundred_100kb), None),
                "three": ("3 Executors, 1 identity, 4,000 each", three, None),
            }  # fmt: skip
            for key, (name, work, share) in workloads.items():
                if only and key not in only:
                    continue
                print(f"  hosted: {name} ...", flush=True)
                time.sleep(SETTLE_S)
                outcome = _measure(proxy, work)
                target = f">= {share:.0%} of {CEILING:g}, 0 failed" if share else "0 failed"
                met = outcome.failed == 0 and (share is None or outcome.rate >= share * CEILING)
                report.add(
                    Figure(
                        name=f"hosted limits: {name}",
                        unit="tasks/s",
                        ours=outcome.rate,
                        target=target,
                        met=met,
                        notes=_notes(outcome),
                    )
                )
            if only and "trickle" not in only:
                return
            print("  hosted: one task every 0.3 s for 60 s ...", flush=True)
            time.sleep(SETTLE_S)
            outcome = _measure(proxy, with_executor(trickle))
            used = sum(outcome.requests.values()) / (RATE_PER_S * outcome.elapsed_s + BURST)
            for p, target in ((50, 1.5), (90, None)):
                fig = Figure(
                    name=f"hosted limits: trickle latency p{p} (1 task / 0.3 s, 60 s)",
                    unit="s",
                    ours=percentile(outcome.latencies_s, p),
                    higher_is_better=False,
                    target=f"<= {target:g} s, 0 failed" if target else "",
                    notes=(
                        f"{_notes(outcome)}; {used:.0%} of the budget used; "
                        f"mean {statistics.mean(outcome.latencies_s):.2f} s"
                    ),
                )
                if target:
                    fig.met = fig.ours <= target and outcome.failed == 0
                report.add(fig)


if __name__ == "__main__":
    # ``python -m benchmarks.bench_hosted [10ms|map|100kb|three|trickle ...]``: some workloads.
    report = Report()
    run(report, set(sys.argv[1:]))
    print(report.table())
