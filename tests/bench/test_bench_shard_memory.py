"""The shard memory bench writes one part through write_shards and reports what the process held."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench.shard_memory import ONE_RUN, format_table, run_one, synthetic_batches


def test_batches_are_deterministic_documents_with_ids_and_tokens() -> None:
    first, again = list(synthetic_batches(2500)), list(synthetic_batches(2500))
    assert [b.num_rows for b in first] == [1000, 1000, 500]
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    ids = [i for batch in first for i in batch.column("id").to_pylist()]
    assert len(set(ids)) == 2500
    lengths = np.concatenate([np.diff(batch.column("tokens").offsets.to_numpy()) for batch in first])
    assert lengths.min() >= 100 and lengths.max() < 700


def test_a_row_streams_the_part_in_runs_and_matches_one_run(tmp_path: Path) -> None:
    streamed = run_one(1500, 100_000, tmp_path / "a")
    whole = run_one(1500, ONE_RUN, tmp_path / "b")
    assert streamed["runs"] > 3 and whole["runs"] == 1
    assert streamed["shard_sha256"] == whole["shard_sha256"] and streamed["tokens"] > 150_000
    assert streamed["peak_mb"] >= streamed["scatter_mb"] >= 0 and streamed["baseline_mb"] > 0
    table = format_table([{"size": 1, "streamed": streamed, "one_run": whole}])
    assert "budget 100,000 tokens" in table and f"{1500:>10,}" in table and "yes" in table
