"""Stats merge the same however the work was split."""

from __future__ import annotations

import random
import statistics

from corpusmill.core.stats import Stats, log2_bucket, merge_all


def _stats_of(values: list[float]) -> Stats:
    stats = Stats()
    for value in values:
        stats.incr("docs")
        stats.observe("chars", value)
    return stats


def test_merge_equals_single_pass_for_any_split() -> None:
    rng = random.Random(7)
    values = [rng.uniform(0, 5000) for _ in range(1000)]
    whole = _stats_of(values)
    cuts = sorted(rng.sample(range(1, 999), 6))
    pieces = [values[a:b] for a, b in zip([0, *cuts], [*cuts, 1000], strict=True)]
    rng.shuffle(pieces)
    merged = merge_all([_stats_of(piece) for piece in pieces])
    assert merged.counters == whole.counters
    assert merged.histograms == whole.histograms
    m = merged.moments["chars"]
    assert m.count == 1000
    assert abs(m.mean - statistics.fmean(values)) < 1e-6
    assert abs(m.variance - statistics.variance(values)) < 1e-3
    assert m.minimum == min(values) and m.maximum == max(values)


def test_round_trip_through_json_form() -> None:
    stats = _stats_of([0, 1, 2, 3, 1024])
    stats.incr("dropped.too_short", 3)
    again = Stats.from_dict(stats.to_dict())
    assert again.to_dict() == stats.to_dict()
    assert again.counters["dropped.too_short"] == 3


def test_log2_buckets() -> None:
    assert [log2_bucket(v) for v in (0, 0.5, 1, 2, 3, 4, 1023, 1024)] == [0, 0, 1, 2, 2, 3, 10, 11]


def test_empty_moments_serialise_without_infinities() -> None:
    data = Stats().merge(_stats_of([])).to_dict()
    assert data == {"counters": {}, "histograms": {}, "moments": {}}
