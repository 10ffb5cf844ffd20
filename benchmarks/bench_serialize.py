"""Serialization: our ComputeSerializer against the reference globus-compute-sdk 4.19.0 serializer.

Both serialize and deserialize the same values in the same process; the outputs must be
identical character for character (a mismatch aborts the benchmark: speed is worth nothing if
endpoints cannot read what we send).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks.harness import Figure, Report, repeat
from benchmarks.tasks import echo

CASES: dict[str, tuple[object, int]] = {
    # name: (value, round trips per measurement)
    "int": (42, 20_000),
    "short str": ("hello world", 20_000),
    "args tuple (3 ints)": ((1, 2, 3), 20_000),
    "small list": (list(range(10)), 20_000),
    "small dict": ({"a": 1, "b": "two", "c": [3.0]}, 20_000),
    "1 MB bytes": (b"\x00\x01" * 512 * 1024, 50),
    "function": (echo, 2_000),
}

SMALL = {"int", "short str", "args tuple (3 ints)", "small list", "small dict"}


def _rate(serializer: object, value: object, loops: int) -> float:
    ser: Callable[[object], str] = serializer.serialize  # type: ignore[attr-defined]
    de: Callable[[str], object] = serializer.deserialize  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(loops):
        de(ser(value))
    return loops / (time.perf_counter() - start)


def run(report: Report, repeats: int = 5) -> None:
    try:
        from globus_compute_sdk.serialize import ComputeSerializer as ReferenceSerializer
    except ImportError:
        print("  (reference globus-compute-sdk not installed: serialization skipped)")
        return
    from globus_compute.serialize import ComputeSerializer

    ours, ref = ComputeSerializer(), ReferenceSerializer()
    for name, (value, loops) in CASES.items():
        if ours.serialize(value) != ref.serialize(value):
            raise AssertionError(f"serialized output differs from the reference for {name}")
        mine, spread = repeat(lambda v=value, n=loops: _rate(ours, v, n), repeats)
        theirs, _ = repeat(lambda v=value, n=loops: _rate(ref, v, n), repeats)
        small = name in SMALL
        figure = Figure(
            name=f"serialize+deserialize {name}",
            unit="round trips/s",
            ours=mine,
            reference=theirs,
            reference_name="globus-compute-sdk 4.19.0",
            target=">= 1.5x" if small else "",
            spread=spread,
            notes="identical output checked",
        )
        if small:
            figure.met = (figure.ratio or 0) >= 1.5
        report.add(figure)
