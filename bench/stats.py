"""Figures, their percentiles and their targets: what every benchmark hands back."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolated between the closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Target:
    """``stat <= limit``; ``stat`` is p50, p90, p99 or ratio (the median of the
    per-sample ratios to the baseline)."""

    stat: str
    limit: float
    text: str


@dataclass
class Figure:
    """One row of the table: samples, an optional baseline measured in the same run."""

    name: str
    unit: str
    samples: list[float]
    how: str
    target: Target | None = None
    baseline: list[float] | None = None
    baseline_label: str = ""
    #: Per-sample ratios to the baseline sample taken next to it (interleaved runs).
    paired_ratios: list[float] | None = None
    #: What dominated the figure, written when a target is missed (or worth saying).
    note: str = ""
    scale: float = 1.0  # samples are multiplied by this for display (s -> ms: 1000)
    decimals: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def stat(self, name: str) -> float:
        if name == "ratio":
            return self.ratio
        return percentile(self.samples, float(name.removeprefix("p")))

    @property
    def ratio(self) -> float:
        if self.paired_ratios:
            return statistics.median(self.paired_ratios)
        if self.baseline:
            return statistics.median(self.samples) / statistics.median(self.baseline)
        return math.nan

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.stat(self.target.stat) <= self.target.limit

    def show(self, value: float) -> str:
        if math.isnan(value):
            return "-"
        return f"{value * self.scale:,.{self.decimals}f}"


@dataclass
class Result:
    """What one benchmark produced: its table rows and a markdown section of detail."""

    figures: list[Figure]
    details: str = ""
    seconds: float = 0.0
