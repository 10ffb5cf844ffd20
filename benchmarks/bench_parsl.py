"""The parsl engine (HighThroughputExecutor, LocalProvider) beside the process engine.

Both run under the same embedded service with two workers and are driven by the same
Executor, so the ratio isolates the engine: Parsl's interchange, manager and ZMQ hops against
the process engine's pipes.
"""

from __future__ import annotations

from benchmarks.bench_executor import submit_then_collect
from benchmarks.harness import Figure, Report, repeat
from benchmarks.tasks import noop

PARSL_TASKS = 2_000


def _rate(engine: str, n: int, repeats: int) -> tuple[float, str]:
    from globus_compute.local import LocalCompute

    with LocalCompute(workers=2, engine=engine, service_args=["--retention-s", "0"]) as local:
        with local.executor() as ex:
            # Warm up: HTEX blocks start after the agent, and workers load the function once.
            for f in [ex.submit(noop) for _ in range(100)]:
                f.result(timeout=120)
            return repeat(lambda: submit_then_collect(ex, n), repeats)


def run(report: Report, repeats: int = 3, tasks: int = PARSL_TASKS) -> None:
    """Throughput of ``tasks`` no-op tasks: parsl engine (ours) vs process engine (reference)."""
    process_rate, _ = _rate("process", tasks, repeats)
    parsl_rate, spread = _rate("parsl", tasks, repeats)
    report.add(
        Figure(
            name=f"parsl engine throughput, {tasks:,} no-op tasks",
            unit="tasks/s",
            ours=parsl_rate,
            reference=process_rate,
            reference_name="process engine, same stack",
            spread=spread,
            notes="LocalCompute(workers=2) + Executor; HTEX on LocalProvider",
        )
    )


if __name__ == "__main__":
    rep = Report()
    run(rep)
    print(rep.table())
