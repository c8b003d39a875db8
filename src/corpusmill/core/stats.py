"""Statistics that workers produce in pieces and one place merges.

Every worker keeps its own `Stats` for the part it processes; the runner merges them per stage. Merging is
associative and commutative, so the result does not depend on how an engine split or ordered the work.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunningMoments:
    """Count, mean and variance by Welford's method, mergeable with Chan's formula."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        """Fold in one observation."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def merge(self, other: RunningMoments) -> None:
        """Fold in another worker's moments."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            self.minimum, self.maximum = other.minimum, other.maximum
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    @property
    def variance(self) -> float:
        """Sample variance (0 for fewer than two observations)."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    def to_dict(self) -> dict[str, float]:
        """JSON form; min/max are null when nothing was observed."""
        return {
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "std": math.sqrt(self.variance),
            "min": self.minimum if self.count else None,
            "max": self.maximum if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunningMoments:
        """Inverse of `to_dict`."""
        return cls(
            count=int(data["count"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            minimum=math.inf if data.get("min") is None else float(data["min"]),
            maximum=-math.inf if data.get("max") is None else float(data["max"]),
        )


def log2_bucket(value: float) -> int:
    """Histogram bucket for a non-negative value: 0 holds 0, bucket k holds [2**(k-1), 2**k)."""
    if value < 1:
        return 0
    return math.floor(math.log2(value)) + 1


@dataclass
class Stats:
    """Counters, log2 histograms and running moments, keyed by name."""

    counters: Counter[str] = field(default_factory=Counter)
    histograms: dict[str, Counter[int]] = field(default_factory=dict)
    moments: dict[str, RunningMoments] = field(default_factory=dict)

    def incr(self, name: str, amount: int = 1) -> None:
        """Add to a counter."""
        self.counters[name] += amount

    def observe(self, name: str, value: float) -> None:
        """Record one value in both the log2 histogram and the running moments of `name`."""
        self.histograms.setdefault(name, Counter())[log2_bucket(value)] += 1
        self.moments.setdefault(name, RunningMoments()).add(value)

    def observe_many(self, name: str, values: list[float] | list[int]) -> None:
        """Record several values at once."""
        for value in values:
            self.observe(name, value)

    def merge(self, other: Stats) -> Stats:
        """Fold another Stats into this one and return self."""
        self.counters.update(other.counters)
        for name, hist in other.histograms.items():
            self.histograms.setdefault(name, Counter()).update(hist)
        for name, moments in other.moments.items():
            self.moments.setdefault(name, RunningMoments()).merge(moments)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON form with sorted keys, so equal stats serialise identically."""
        return {
            "counters": dict(sorted(self.counters.items())),
            "histograms": {
                name: {str(bucket): n for bucket, n in sorted(hist.items())}
                for name, hist in sorted(self.histograms.items())
            },
            "moments": {name: m.to_dict() for name, m in sorted(self.moments.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        """Inverse of `to_dict`."""
        return cls(
            counters=Counter({k: int(v) for k, v in data.get("counters", {}).items()}),
            histograms={
                name: Counter({int(b): int(n) for b, n in hist.items()})
                for name, hist in data.get("histograms", {}).items()
            },
            moments={name: RunningMoments.from_dict(m) for name, m in data.get("moments", {}).items()},
        )


def merge_all(parts: list[Stats]) -> Stats:
    """Merge many partial stats into a fresh one."""
    total = Stats()
    for part in parts:
        total.merge(part)
    return total


def merge_labelled(into: dict[str, Stats], data: dict[str, dict[str, Any]]) -> None:
    """Fold a part's stats in JSON form (`{label: Stats.to_dict()}`, as part results carry them) into `into`."""
    for label, stats in data.items():
        into.setdefault(label, Stats()).merge(Stats.from_dict(stats))
