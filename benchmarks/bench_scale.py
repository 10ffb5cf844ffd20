"""Scale: 100,000 tasks through Executor.map: linear cost, client memory, service database size."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import time
import tracemalloc
from pathlib import Path

from benchmarks.harness import Figure, Report, timed
from benchmarks.tasks import noop

SMALL, LARGE = 10_000, 100_000


def map_time(local: object, n: int) -> float:
    with local.executor() as ex:  # type: ignore[attr-defined]
        ex.submit(noop).result()  # registration outside the timing
        return timed(lambda: sum(1 for _ in ex.map(noop, range(n))))


def _bytes_per_future(local: object, n: int) -> float:
    """Client memory held per in-flight future, right after ``n`` submits (tracemalloc)."""
    with local.executor() as ex:  # type: ignore[attr-defined]
        ex.submit(noop).result()
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        futures = [ex.submit(noop, i) for i in range(n)]
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        for f in futures:
            f.result()
    return (current - base) / n


def _database_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("compute.db*"))


def _wait_for_reclaim(state_dir: Path, timeout: float) -> int:
    """The database's bytes once the purge's space reclaim settles: the service gives freed
    pages back in steps of its own after the rows are gone (no size change over 2 s)."""
    deadline = time.perf_counter() + timeout
    size = _database_bytes(state_dir)
    while time.perf_counter() < deadline:
        time.sleep(2.0)
        now = _database_bytes(state_dir)
        if now == size:
            break
        size = now
    return size


def run(report: Report, local: object) -> None:
    t_small = map_time(local, SMALL)
    t_large = map_time(local, LARGE)
    growth = Figure(
        name=f"time({LARGE:,}) / time({SMALL:,}) via map",
        unit="x",
        ours=t_large / t_small,
        higher_is_better=False,
        target="<= 11",
        spread=f"{SMALL:,}: {t_small:.2f} s, {LARGE:,}: {t_large:.2f} s",
    )
    growth.met = growth.ours <= 11
    report.add(growth)

    per_future = Figure(
        name="client memory per in-flight future",
        unit="bytes",
        ours=_bytes_per_future(local, LARGE),
        higher_is_better=False,
        target="<= 2048",
        spread=f"n={LARGE:,}, tracemalloc",
    )
    per_future.met = per_future.ours <= 2048
    report.add(per_future)

    state_dir = local.state_dir  # type: ignore[attr-defined]
    start = time.perf_counter()
    remaining = _wait_for_purge(state_dir, timeout=60.0)
    purged_s = time.perf_counter() - start
    at_purge = _database_bytes(state_dir)
    settled = _wait_for_reclaim(state_dir, timeout=30.0)
    tasks = 2 * (SMALL + LARGE)
    report.add(
        Figure(
            name="service database after results retrieved and purged",
            unit="bytes",
            ours=float(settled),
            higher_is_better=False,
            notes=(
                f"after {tasks:,} tasks; {remaining} task rows left after waiting "
                f"{purged_s:.1f} s for the purge ({at_purge:,} bytes then), space reclaimed "
                f"{time.perf_counter() - start:.1f} s after the wait began"
            ),
        )
    )


def _wait_for_purge(state_dir: Path, timeout: float) -> int:
    """Poll the task table (read-only) until the service's purge has emptied it."""
    uri = f"file:{state_dir / 'compute.db'}?mode=ro"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            (count,) = db.execute("SELECT count(*) FROM tasks").fetchone()
        if count == 0 or time.monotonic() > deadline:
            return int(count)
        time.sleep(0.5)  # pacing a poll of another process's database, not a test wait
