"""One row of the results: a figure for this project beside its baselines, with its target.

Every benchmark script returns a list of these; ``run.py`` writes them to ``bench/results.json``
and as the summary table of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    question: str  # which question of issue #12 (bytes, server_cost, paint, load, footprint, ...)
    figure: str  # what is measured, in words
    unit: str
    ours: float | None
    baselines: dict[str, float | None] = field(default_factory=dict)
    ratio: str = ""  # how this project compares, in words ("1/12 of (a)")
    target: str = ""
    met: bool | None = None  # None: no target, or not measured
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fraction_of(ours: float | None, theirs: float | None) -> tuple[float | None, str]:
    """``(ours / theirs, "1/N of")`` in words; None where either is missing."""
    if not ours or not theirs:
        return None, "n/a"
    share = ours / theirs
    return share, (f"1/{1 / share:.1f}" if share < 1 else f"{share:.2f}x")
