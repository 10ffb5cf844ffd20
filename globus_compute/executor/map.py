"""``Executor.map`` machinery: ordered results with a deadline, lazy submission, chunks, a bar.

The semantics follow ``concurrent.futures.Executor.map`` as of Python 3.14: every call is
submitted when ``map`` is called (or only ``buffersize`` ahead of the consumer), results come
back in input order, ``timeout`` counts from the call to ``map``, and leaving the iterator early
cancels what has not started. ``chunksize > 1`` groups calls into one task, as
``ProcessPoolExecutor`` does, which is how many short calls beat the per-task overhead.
"""

from __future__ import annotations

import collections
import itertools
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from globus_compute.executor.future import ComputeFuture

__all__ = ["check_map_arguments", "ordered_results", "progress_bar", "run_chunk"]

#: The executor ``map`` submits through (held weakly by the result generator).
E = TypeVar("E")

_CHUNK_RUNNER_SOURCE = """\
def run_chunk(fn, chunk):
    return [fn(*args) for args in chunk]
"""


ChunkRunner = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]


def _build_chunk_runner() -> ChunkRunner:
    # Defined from source under a module name nothing can import, so dill sends the function
    # by value: the endpoint needs neither globus_compute nor anything else installed for it.
    namespace: dict[str, Any] = {"__name__": "globus_compute_map_chunk"}
    exec(_CHUNK_RUNNER_SOURCE, namespace)
    runner: ChunkRunner = namespace["run_chunk"]
    runner.__doc__ = "Run one map() chunk: fn(*args) for each args tuple, results in order."
    return runner


#: The task function behind ``map(chunksize>1)``: takes ``(fn, [args, ...])``.
run_chunk = _build_chunk_runner()


def ordered_results(
    executor: E,
    send: Callable[[E, Any], ComputeFuture],
    units: Iterator[Any],
    end_time: float | None,
    buffersize: int | None,
    chunked: bool,
    bar: Any = None,
) -> Iterator[Any]:
    """Submit ``units`` (eagerly, or ``buffersize`` ahead) and return a generator of results.

    Submission errors raise from ``map`` itself, as with the stdlib executors. The generator
    holds only a weak reference to the executor, so an abandoned iterator does not keep it
    alive, and no reference to a result it has handed out (bpo-14406): a future leaves the
    generator when its result is taken, a chunk's results are popped one by one, and nothing
    yielded stays bound to a local while the generator is suspended. ``bar`` (a tqdm bar)
    counts each result as it is handed out and is closed when the iteration ends.
    """
    first = units if buffersize is None else itertools.islice(units, buffersize)
    futures = collections.deque(send(executor, unit) for unit in first)
    executor_ref = weakref.ref(executor)

    def submit_one_more() -> None:
        # A function of its own, so the executor and the unit are not locals of the
        # generator while it is suspended.
        ex = executor_ref()
        unit = None if ex is None else next(units, None)
        if ex is not None and unit is not None:
            futures.append(send(ex, unit))

    def results() -> Iterator[Any]:
        try:
            while futures:
                if buffersize is not None:
                    submit_one_more()
                remaining = None if end_time is None else end_time - time.monotonic()
                if chunked:
                    chunk = list(_result_or_cancel(futures.popleft(), remaining))
                    chunk.reverse()
                    while chunk:
                        yield _counted(bar, chunk.pop())
                else:
                    yield _counted(bar, _result_or_cancel(futures.popleft(), remaining))
        finally:
            for future in futures:
                future.cancel()
            if bar is not None:
                bar.close()

    return results()


def _counted(bar: Any, value: Any) -> Any:
    if bar is not None:
        bar.update(1)
    return value


def _result_or_cancel(future: ComputeFuture, timeout: float | None) -> Any:
    try:
        return future.result(timeout)
    finally:
        future.cancel()
        # A TimeoutError's traceback keeps this frame, and with it the future, alive.
        del future


def check_map_arguments(chunksize: int, buffersize: int | None) -> None:
    """The stdlib ``Executor.map`` checks, with its messages."""
    if chunksize < 1:
        raise ValueError("chunksize must be >= 1.")
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")


def progress_bar(iterables: tuple[Iterable[Any], ...]) -> Any:
    """A ``tqdm`` bar sized to the shortest iterable (unsized when any has no length).

    Raises:
        ImportError: tqdm is not installed; the message says how to install it.
    """
    try:
        from tqdm import tqdm
    except ImportError as exc:
        raise ImportError(
            "map(progress=True) needs tqdm: pip install tqdm (or 'globus-compute[progress]')"
        ) from exc
    try:
        total: int | None = min(len(it) for it in iterables)  # type: ignore[arg-type]
    except TypeError:
        total = None
    return tqdm(total=total, unit="task")
