"""Executor on the embedded stack against ProcessPoolExecutor(2), measured in the same run.

ProcessPoolExecutor is the physical floor for "run a Python function in another process" on
this machine; our path adds serialization, HTTP, SQLite and the endpoint agent on top of it.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, ProcessPoolExecutor

from benchmarks.harness import Figure, Report, percentile, repeat, timed
from benchmarks.tasks import noop

THROUGHPUT_TASKS = 10_000
LATENCY_TASKS = 300


def submit_then_collect(ex: Executor, n: int) -> float:
    """Tasks per second for ``n`` no-op submits followed by collecting every result."""
    elapsed = timed(lambda: [f.result() for f in [ex.submit(noop) for _ in range(n)]])
    return n / elapsed


def latencies_ms(ex: Executor, n: int) -> list[float]:
    """Submit-to-result time of ``n`` tasks run one at a time."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        ex.submit(noop).result()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _warm(ex: Executor) -> None:
    for f in [ex.submit(noop) for _ in range(200)]:
        f.result()


def run(report: Report, local: object, repeats: int = 3) -> None:
    with ProcessPoolExecutor(2) as pool:
        _warm(pool)
        pool_rate, _ = repeat(lambda: submit_then_collect(pool, THROUGHPUT_TASKS), repeats)
        pool_lat = latencies_ms(pool, LATENCY_TASKS)
    with local.executor() as ex:  # type: ignore[attr-defined]
        _warm(ex)
        our_rate, spread = repeat(lambda: submit_then_collect(ex, THROUGHPUT_TASKS), repeats)
        our_lat = latencies_ms(ex, LATENCY_TASKS)

    thr = Figure(
        name=f"throughput, {THROUGHPUT_TASKS:,} no-op tasks",
        unit="tasks/s",
        ours=our_rate,
        reference=pool_rate,
        reference_name="ProcessPoolExecutor(2)",
        target="ratio >= 0.5",
        spread=spread,
    )
    thr.met = (thr.ratio or 0) >= 0.5
    report.add(thr)
    for p, target in ((50, 10.0), (99, None)):
        fig = Figure(
            name=f"latency p{p}, one task at a time",
            unit="ms",
            ours=percentile(our_lat, p),
            reference=percentile(pool_lat, p),
            reference_name="ProcessPoolExecutor(2)",
            higher_is_better=False,
            target=f"<= {target:g} ms" if target else "",
            spread=f"n={LATENCY_TASKS}",
        )
        if target:
            fig.met = fig.ours <= target
        report.add(fig)
