"""The dedup scaling bench builds a corpus with duplicate chains and reports what one run held."""

from __future__ import annotations

import json
from pathlib import Path

from bench.dedup_scaling import format_table, run_one, write_corpus


def test_corpus_has_near_duplicates_and_the_run_reports_its_buckets(tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    write_corpus(input_dir, docs=900, docs_per_file=300)
    files = sorted(input_dir.glob("*.jsonl"))
    assert len(files) == 3
    rows = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert len(rows) == len({row["id"] for row in rows}) == 900

    row = run_one(input_dir, tmp_path / "run", "local")
    assert row["buckets"] == 3  # one bucket per part
    assert 0 < row["confirmed_edges"] <= row["candidate_edges"]
    assert 0 < row["removed"] < 900
    assert row["star_steps"] >= 2 and row["star_steps"] % 2 == 0
    assert 0 < row["largest_task_mb"] < row["one_process_mb"]
    assert f"{900:>10,}" in format_table([{"docs": 900, **row}], "local")
