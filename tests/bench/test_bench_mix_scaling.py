"""The mix scaling bench drives the accounting rounds and reports what the driver held, bounded by design."""

from __future__ import annotations

import json
from pathlib import Path

from bench.mix_scaling import build_parts, format_table, main, measure

from corpusmill.mixtures.threshold import EXACT_DOCUMENTS, SLICES


def test_parts_hold_every_document_once() -> None:
    parts = build_parts(docs=2_500, parts=3)
    assert len(parts) == 3
    ids = [i for part in parts for batch in part for i in batch.column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == 2_500


def test_the_driver_holds_bounded_summaries_while_the_old_gather_grows(tmp_path: Path) -> None:
    small, large = (measure(docs, parts=4) for docs in (2_000, 20_000))
    for row in (small, large):
        assert 2 <= row["rounds"] <= 4
        assert 0 < row["largest_entries"] <= max(SLICES, EXACT_DOCUMENTS)
        assert row["driver_peak_kib"] > 0 and row["part_kib"] <= row["received_kib"]
    assert large["old_ids"] > 3 * small["old_ids"] > 0  # the previous design's gather grows with the corpus
    assert f"{20_000:>10,}" in format_table([small, large])
    out = tmp_path / "rows.json"
    (row,) = main(["--sizes", "1000", "--parts", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == [row] and row["docs"] == 1_000
