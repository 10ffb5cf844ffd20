"""Shared helpers of the fault tests: a source-text Client and strict accounting.

Every fault test ends the same way: each future resolved exactly once, each value checked, and
the service's task group holding the tasks we think it holds. The helpers here do that counting
so the tests read as "inject the fault, then account for everything".

Task functions travel as source text (``PureSourceTextInspect``) so the endpoint's worker
processes never need to import a test module; each keeps its imports inside its body.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import globus_sdk

from globus_compute import Client
from globus_compute.executor.future import ComputeFuture
from globus_compute.local import LocalCompute
from globus_compute.serialize import PureSourceTextInspect

#: Longest any one fault test waits for its futures; generous for a loaded 2-core CI box.
RESULT_DEADLINE_S = 90.0


def square_after(x: int, delay: float = 0.0) -> tuple[int, int]:
    """Sleep ``delay`` seconds, return ``(x, x*x)``: each value names the input it came from."""
    import time

    if delay:
        time.sleep(delay)
    return (x, x * x)


def source_client(local: LocalCompute, base_url: str | None = None) -> Client:
    """A Client of ``local`` (or of a proxy in front of it) that ships functions as source text."""
    assert local.token is not None
    return Client(
        base_url=base_url or local.base_url,
        authorizer=globus_sdk.AccessTokenAuthorizer(local.token),
        code_serialization_strategy=PureSourceTextInspect(),
        do_version_check=False,
    )


@dataclass
class Ledger:
    """Counts how often each future resolves (done-callbacks fire once per resolution).

    Keyed by the future itself, which the ledger so keeps alive: keyed by ``id()``, a future
    collected early (a warm-up task's) handed its id to a later one, which then counted twice.
    """

    calls: collections.Counter[concurrent.futures.Future[Any]] = field(
        default_factory=collections.Counter
    )
    resolved: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def track(self, futures: Iterable[ComputeFuture]) -> list[ComputeFuture]:
        tracked = list(futures)
        for future in tracked:
            future.add_done_callback(self._note)
        return tracked

    def _note(self, future: concurrent.futures.Future[Any]) -> None:
        with self.changed:
            self.calls[future] += 1
            self.resolved += 1
            self.changed.notify_all()

    def wait_resolved(self, n: int, timeout: float = RESULT_DEADLINE_S) -> None:
        """Block until ``n`` tracked futures have resolved: the moment to inject a fault."""
        with self.changed:
            ok = self.changed.wait_for(lambda: self.resolved >= n, timeout)
        assert ok, f"only {self.resolved} futures resolved within {timeout}s (wanted {n})"

    def assert_each_once(self, futures: list[ComputeFuture]) -> None:
        with self.changed:
            counts = [self.calls[f] for f in futures]
        assert counts.count(1) == len(futures), collections.Counter(counts)


def wait_all(futures: list[ComputeFuture], timeout: float = RESULT_DEADLINE_S) -> None:
    """Wait (with a deadline) until every future is resolved; fail naming how many are not."""
    _, not_done = concurrent.futures.wait(futures, timeout=timeout)
    assert not not_done, f"{len(not_done)} of {len(futures)} futures still pending after {timeout}s"


def outcomes(futures: list[ComputeFuture]) -> tuple[list[Any], list[BaseException]]:
    """Split resolved futures into results and exceptions (every future must be done)."""
    results: list[Any] = []
    errors: list[BaseException] = []
    for future in futures:
        exc = future.exception(timeout=0)
        if exc is None:
            results.append(future.result(timeout=0))
        else:
            errors.append(exc)
    return results, errors


def assert_distinct_task_ids(futures: list[ComputeFuture]) -> None:
    """Every future is bound to its own service task (no two futures share one)."""
    ids = [f.task_id for f in futures]
    assert None not in ids, f"{ids.count(None)} futures never got a task id"
    assert len(set(ids)) == len(ids), "two futures share a task id"


def group_task_ids(client: Client, task_group_id: uuid.UUID | str) -> list[str]:
    """The task ids the service holds for a task group (duplicated submits would show here)."""
    document = client.get_task_group(str(task_group_id))
    return [str(task["id"]) for task in document.get("tasks") or []]


def logged_run(log_path: str, x: int, delay: float = 0.0, how: str = "") -> tuple[int, int]:
    """Append ``"<x> <start time>"`` to ``log_path``, then behave as ``how`` says.

    The log is the side channel that counts runs: every start of the task adds one line, even
    a run whose result never reached anybody. ``how``: ``""`` returns ``(x, x*x)`` after
    ``delay`` seconds; ``"exit"`` kills the worker process (``os._exit(7)``); ``"surrogate"``
    raises ``ValueError`` whose text holds a lone surrogate; ``"system-exit"`` and
    ``"interrupt"`` raise ``SystemExit`` and ``KeyboardInterrupt``; ``"quotes"`` returns a
    string of ``x`` double quotes (JSON escaping doubles it on each encoding).
    """
    import os
    import time

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{x} {time.time()!r}\n".encode())
    finally:
        os.close(fd)
    if delay:
        time.sleep(delay)
    if how == "exit":
        os._exit(7)
    if how == "surrogate":
        raise ValueError("bad \ud800")
    if how == "system-exit":
        raise SystemExit(3)
    if how == "interrupt":
        raise KeyboardInterrupt
    if how == "quotes":
        return '"' * x  # type: ignore[return-value]
    return (x, x * x)


def run_starts(log_path: str | os.PathLike[str]) -> dict[int, list[float]]:
    """For each task input ``x`` logged by :func:`logged_run`, the start time of each run."""
    starts: dict[int, list[float]] = collections.defaultdict(list)
    try:
        text = Path(log_path).read_text()
    except FileNotFoundError:
        return {}
    for line in text.splitlines():
        x, started = line.split()
        starts[int(x)].append(float(started))
    return dict(starts)


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = RESULT_DEADLINE_S
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        pause.wait(0.02)
