"""Peers: the same no-op workload on every executor a user would pick instead, in one run.

``python -m benchmarks --peers`` (or ``python -m benchmarks.bench_peers``) measures, each with
two workers: ``ProcessPoolExecutor(2)``, loky, Dask distributed (``LocalCluster`` through
``client.get_executor()``), Ray (``ObjectRef.future()``), Parsl's HighThroughputExecutor on a
``LocalProvider``, and our ``Executor`` on ``LocalCompute(workers=2)``. The workload is the
same for all: a warm-up, then 10,000 no-op submits collected with ``as_completed`` (three
rounds, the median), then 300 tasks one at a time (submit, then wait for the result: p50 and
p99). Only ratios within one run mean anything on a shared machine.

The table gives each system's throughput as a ratio to ``ProcessPoolExecutor(2)`` (the floor
for "run a function in another process") and to the best peer (the fastest of loky, Dask, Ray
and Parsl), then checks issue 17's targets against the same run: our p50 at most half the best
p50 of the scheduler-based peers (Ray, Parsl, Dask), our p99 no worse than their best p99, our
throughput at least ``ProcessPoolExecutor(2)``'s, and ``time(100,000) / time(10,000)`` through
``Executor.map`` (measured as ``bench_scale`` does) at most 10.5.

Each peer runs in a child process of its own session (and, where ``unshare`` may, of its own
network namespace: ``private_net``), bounded in time, so one peer's daemons, threads and
imports cannot slow the next; the parent then makes sure nothing the peer started is still
running (``process_tree.reap``), and a peer that serves on anything but loopback is refused
(``process_tree.foreign_listeners``). A peer that is not installed
(``pip install -e '.[parsl,peers]'``) is skipped with a note, never a failure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks import private_net, process_tree
from benchmarks.harness import Figure, Report, percentile
from benchmarks.peer_adapters import PEERS, Peer
from benchmarks.tasks import noop

THROUGHPUT_TASKS = 10_000
LATENCY_TASKS = 300
ROUNDS = 3
WARMUP_TASKS = 1_000
#: Longest one peer's child may run (start, warm-up, every round, teardown), in seconds.
PEER_TIMEOUT_S = 900.0
#: Longest one round of submits may wait for its results, in seconds.
ROUND_TIMEOUT_S = 300.0
#: Longest one lone task may take, in seconds (the first may wait for workers to start).
TASK_TIMEOUT_S = 120.0
#: The issue's targets: our p50 at most this share of the best scheduler peer's.
P50_SHARE = 0.5
#: ... our throughput at least this many times ProcessPoolExecutor(2)'s.
THROUGHPUT_RATIO = 1.0
#: ... and time(100,000) / time(10,000) via map at most this.
SCALE_GROWTH = 10.5
POOL, OURS = "process-pool", "ours"


# -- the workload (run inside each peer's child) ------------------------------------------------


def submit_then_collect(ex: Executor, n: int) -> float:
    """Tasks per second: ``n`` no-op submits, then every result collected with ``as_completed``."""
    start = time.perf_counter()
    futures: list[Future[Any]] = [ex.submit(noop) for _ in range(n)]
    for future in as_completed(futures, timeout=ROUND_TIMEOUT_S):
        future.result()
    return n / (time.perf_counter() - start)


def one_at_a_time_ms(ex: Executor, n: int) -> list[float]:
    """Submit-to-result time of ``n`` no-op tasks, each submitted after the last one's result."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        ex.submit(noop).result(timeout=TASK_TIMEOUT_S)
        out.append((time.perf_counter() - start) * 1000)
    return out


def measure(peer: Peer, sizes: Sizes, tree_path: Path) -> dict[str, Any]:
    """Run the workload on ``peer``; what the parent needs to print its row."""
    seen: list[process_tree.Seen] = []

    def record() -> None:
        # Written at once, so the parent can clean up after a child it had to kill.
        seen.extend(s for s in process_tree.members(os.getpid()) if s not in seen)
        tree_path.write_text(json.dumps([vars(s) for s in seen]))

    with peer.open() as ex:
        submit_then_collect(ex, sizes.warmup)
        record()
        foreign = process_tree.foreign_listeners(seen, private_net.only_loopback())
        if foreign:
            raise RuntimeError(f"refused: serves on a non-loopback address: {', '.join(foreign)}")
        rates = [submit_then_collect(ex, sizes.tasks) for _ in range(sizes.rounds)]
        latencies = one_at_a_time_ms(ex, sizes.latency_tasks)
        record()
    result: dict[str, Any] = {"rates": rates, "latencies_ms": latencies}
    if peer.key == OURS and sizes.scale:
        result["scale_s"] = _our_scale()
    return result


def _our_scale() -> list[float]:
    """time(10,000) and time(100,000) through ``Executor.map``, as ``bench_scale`` measures it."""
    from benchmarks import bench_scale
    from globus_compute.local import LocalCompute

    with LocalCompute(workers=2, service_args=["--retention-s", "0"]) as local:
        return [bench_scale.map_time(local, n) for n in (bench_scale.SMALL, bench_scale.LARGE)]


@dataclass(frozen=True)
class Sizes:
    tasks: int = THROUGHPUT_TASKS
    latency_tasks: int = LATENCY_TASKS
    rounds: int = ROUNDS
    warmup: int = WARMUP_TASKS
    scale: bool = True

    def argv(self) -> list[str]:
        return [
            "--tasks", str(self.tasks), "--latency-tasks", str(self.latency_tasks),
            "--rounds", str(self.rounds), "--warmup", str(self.warmup),
            *([] if self.scale else ["--skip-scale"]),
        ]  # fmt: skip


# -- the parent: one child per peer, then the table ---------------------------------------------


@dataclass
class Row:
    peer: Peer
    rate: float | None = None
    rates: list[float] = field(default_factory=list)
    p50: float | None = None
    p99: float | None = None
    scale_s: list[float] | None = None
    notes: list[str] = field(default_factory=list)


def run_peer(peer: Peer, sizes: Sizes, timeout_s: float, isolate: list[str]) -> Row:
    """Measure ``peer`` in a child process of its own session; never raises for the peer.

    Args:
        peer: The peer.
        sizes: The workload.
        timeout_s: Longest the child may run before it is stopped.
        isolate: ``private_net.unshare_prefix()``: the command that gives the child a network
            namespace of its own, or [] to run it in ours.
    """
    row = Row(peer)
    missing = peer.missing()
    if missing:
        row.notes.append(f"skipped: {missing} not installed (pip install -e '.[parsl,peers]')")
        return row
    with tempfile.TemporaryDirectory(prefix=f"peers-{peer.key}-") as tmp:
        out, tree_path, log_path = (Path(tmp, name) for name in ("result.json", "tree.json", "log"))
        argv = [*isolate, sys.executable, "-m", "benchmarks.bench_peers", "--measure", peer.key,
                "--out", str(out), "--tree", str(tree_path), *sizes.argv()]  # fmt: skip
        if isolate:
            argv.append("--private-net")
        started = time.monotonic()
        with open(log_path, "w") as log:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=_child_env(), start_new_session=True,
            )  # fmt: skip
            try:
                child.wait(timeout_s)
            except subprocess.TimeoutExpired:
                row.notes.append(f"timed out after {timeout_s:.0f} s")
                _stop(child)
        recorded = [process_tree.Seen(**s) for s in _read_json(tree_path, [])]
        left = process_tree.reap(recorded + process_tree.session(child.pid))
        if left:
            row.notes.append(f"killed {len(left)} processes left running: "
                             + ", ".join(sorted({s.name for s in left})))  # fmt: skip
        result = _read_json(out, {})
        if "error" in result:
            row.notes.append(f"failed: {result['error']}")
        elif child.returncode != 0 and not row.notes:
            row.notes.append(f"child exited with {child.returncode}")
        if "rates" not in result:
            print(f"  {peer.name}: no figures; its log ends:\n{_tail(log_path)}", flush=True)
            return row
    row.rates = result["rates"]
    row.rate = median(row.rates)
    row.p50 = percentile(result["latencies_ms"], 50)
    row.p99 = percentile(result["latencies_ms"], 99)
    row.scale_s = result.get("scale_s")
    row.notes.insert(0, f"{result.get('version', '')}; rounds {_num(min(row.rates))}-"
                        f"{_num(max(row.rates))}".lstrip("; "))  # fmt: skip
    if peer.note:
        row.notes.insert(1, peer.note)
    print(f"  {peer.name}: {_num(row.rate)} tasks/s, p50 {row.p50:.2f} ms, "
          f"p99 {row.p99:.2f} ms ({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
    return row


def _child_env() -> dict[str, str]:
    """The workers of every peer import ``benchmarks.tasks``; Parsl's need its scripts on PATH."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    bin_dir = str(Path(sys.executable).parent)
    return dict(
        os.environ,
        PYTHONPATH=root + (os.pathsep + path if path else ""),
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
    )


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child (its peer may tear down), SIGKILL it if it lingers."""
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join("    " + s for s in path.read_text().splitlines()[-lines:])
    except OSError:
        return "    (no log)"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def peer_table(rows: list[Row]) -> str:
    """The issue's table: tasks/s and its ratios, p50 and p99, one row per system."""
    pool = next((r.rate for r in rows if r.peer.key == POOL), None)
    best = max((r.rate for r in rows if r.rate and r.peer.key not in (POOL, OURS)), default=None)
    lines = [
        "| system | tasks/s | x ProcessPoolExecutor(2) | x best peer | p50 ms | p99 ms | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.rate is None:
            lines.append(f"| {r.peer.name} | - | - | - | - | - | {'; '.join(r.notes)} |")
            continue
        x_pool = f"{r.rate / pool:.2f}" if pool else "-"
        x_best = f"{r.rate / best:.2f}" if best else "-"
        lines.append(
            f"| {r.peer.name} | {_num(r.rate)} | {x_pool} | {x_best} | {r.p50:.2f} | "
            f"{r.p99:.2f} | {'; '.join(r.notes)} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row], sizes: Sizes) -> Report:
    """The issue's targets, checked against the peers measured in this run."""
    report = Report()
    ours = next((r for r in rows if r.peer.key == OURS and r.rate is not None), None)
    if ours is None:
        return report
    assert ours.p50 is not None and ours.p99 is not None
    schedulers = [r for r in rows if r.peer.scheduler and r.p50 is not None]
    fastest = min(schedulers, key=lambda r: r.p50 or 0.0, default=None)
    steadiest = min(schedulers, key=lambda r: r.p99 or 0.0, default=None)
    p50 = Figure(
        name="our p50, one task at a time", unit="ms", ours=ours.p50, higher_is_better=False,
        reference=fastest.p50 if fastest else None,
        reference_name=f"{fastest.peer.short}, best p50 of Ray/Parsl/Dask" if fastest else "",
        target=f"<= {P50_SHARE:g}x theirs",
    )  # fmt: skip
    p99 = Figure(
        name="our p99, one task at a time", unit="ms", ours=ours.p99, higher_is_better=False,
        reference=steadiest.p99 if steadiest else None,
        reference_name=f"{steadiest.peer.short}, best p99 of Ray/Parsl/Dask" if steadiest else "",
        target="<= theirs",
    )  # fmt: skip
    if fastest and fastest.p50 is not None:
        p50.met = ours.p50 <= P50_SHARE * fastest.p50
    if steadiest and steadiest.p99 is not None:
        p99.met = ours.p99 <= steadiest.p99
    report.figures += [p50, p99]
    pool = next((r for r in rows if r.peer.key == POOL and r.rate is not None), None)
    thr = Figure(
        name=f"our throughput, {sizes.tasks:,} no-op tasks", unit="tasks/s",
        ours=ours.rate or 0.0, reference=pool.rate if pool else None,
        reference_name="ProcessPoolExecutor(2)", target=f"ratio >= {THROUGHPUT_RATIO:g}",
    )  # fmt: skip
    if thr.ratio is not None:
        thr.met = thr.ratio >= THROUGHPUT_RATIO
    report.figures.append(thr)
    if ours.scale_s:
        small, large = ours.scale_s
        growth = Figure(
            name="time(100,000) / time(10,000) via map", unit="x", ours=large / small,
            higher_is_better=False, target=f"<= {SCALE_GROWTH:g}",
            spread=f"10,000: {small:.2f} s, 100,000: {large:.2f} s",
        )  # fmt: skip
        growth.met = growth.ours <= SCALE_GROWTH
        report.figures.append(growth)
    return report


def run(keys: list[str], sizes: Sizes, timeout_s: float, json_path: str | None) -> int:
    print(f"peers, {datetime.datetime.now().isoformat(timespec='seconds')}: "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}", flush=True)  # fmt: skip
    isolate = private_net.unshare_prefix()
    print("each peer in a child process of its own session" + (
        ", in a network namespace of its own (loopback only)" if isolate else
        " (no private network namespace here: a peer serving on other interfaces is refused)"
    ), flush=True)  # fmt: skip
    rows = [run_peer(PEERS[key], sizes, timeout_s, isolate) for key in keys]
    report = targets(rows, sizes)
    print()
    print(peer_table(rows))
    print()
    print(report.table())
    if json_path:
        doc = {
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(), "load": os.getloadavg()},
            "sizes": vars(sizes),
            "peers": [{"system": r.peer.name, "tasks_per_s": r.rate, "rounds": r.rates,
                       "p50_ms": r.p50, "p99_ms": r.p99, "notes": r.notes} for r in rows],
            "targets": [dict(vars(f), ratio=f.ratio) for f in report.figures],
        }  # fmt: skip
        Path(json_path).write_text(json.dumps(doc, indent=2))
        print(f"\nwritten to {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_peers")
    parser.add_argument("--only", default=",".join(PEERS), help="comma-separated peer keys")
    parser.add_argument("--tasks", type=int, default=THROUGHPUT_TASKS)
    parser.add_argument("--latency-tasks", type=int, default=LATENCY_TASKS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--warmup", type=int, default=WARMUP_TASKS)
    parser.add_argument("--skip-scale", action="store_true", help="skip time(100,000)/time(10,000)")
    parser.add_argument("--timeout", type=float, default=PEER_TIMEOUT_S, help="seconds per peer")
    parser.add_argument("--json", default="benchmarks/results-peers.json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # in the child: one peer
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--private-net", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    sizes = Sizes(ns.tasks, ns.latency_tasks, ns.rounds, ns.warmup, not ns.skip_scale)
    if ns.measure:
        if ns.private_net:
            private_net.loopback_up()
        return _child(PEERS[ns.measure], sizes, Path(ns.out), Path(ns.tree))
    keys = [k for k in ns.only.split(",") if k]
    unknown = [k for k in keys if k not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {list(PEERS)}")
    return run(keys, sizes, ns.timeout, ns.json)


def _child(peer: Peer, sizes: Sizes, out: Path, tree_path: Path) -> int:
    try:
        result = measure(peer, sizes, tree_path)
    except Exception as exc:  # reported in the table; the traceback goes to the child's log
        import traceback

        traceback.print_exc()
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}))
        return 1
    result["version"] = peer.version()
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
