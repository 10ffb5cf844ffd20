"""Timing and reporting: medians over repeats with their spread, one table, one JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Figure:
    """One row of the table: our measurement beside the alternative's, measured in the same run.

    ``ratio`` is always "how many times better ours is": ours/reference for rates, and
    reference/ours for costs (seconds, bytes), so a ratio above 1 means we win.
    """

    name: str
    unit: str
    ours: float
    reference: float | None = None
    reference_name: str = ""
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    spread: str = ""
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.ours == 0 or self.reference == 0:
            return None
        return self.ours / self.reference if self.higher_is_better else self.reference / self.ours


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  {figure.name}: {_fmt(figure.ours)} {figure.unit}", flush=True)
        return figure

    def table(self) -> str:
        header = ("figure", "ours", "reference", "ratio", "target", "met", "spread", "notes")
        rows = [header]
        for f in self.figures:
            ref = f"{_fmt(f.reference)} ({f.reference_name})" if f.reference is not None else "-"
            ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
            met = {None: "-", True: "yes", False: "NO"}[f.met]
            rows.append(
                (
                    f.name, f"{_fmt(f.ours)} {f.unit}", ref, ratio, f.target or "-", met,
                    f.spread, f.notes,
                )
            )  # fmt: skip
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self, path: str) -> None:
        doc = {
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "figures": [dict(asdict(f), ratio=f.ratio) for f in self.figures],
        }
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=2)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def repeat(fn: Callable[[], float], times: int) -> tuple[float, str]:
    """Run ``fn`` (which returns one measurement) ``times`` times: the median and the spread."""
    values = [fn() for _ in range(times)]
    med = statistics.median(values)
    return med, f"min {_fmt(min(values))} max {_fmt(max(values))} (n={times})"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
