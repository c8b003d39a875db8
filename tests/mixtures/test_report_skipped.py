"""The report's funnel starts with what reading lost: skipped input by reason, and unreadable files by name."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.recipe import parse_recipe
from corpusmill.core.skips import Skipped, skip_table
from corpusmill.mixtures.report import build_report
from corpusmill.pipelines.runner import run_recipe

WARC_READ = {
    "docs_out": 480,
    "reader.records": 1500,
    "reader.documents": 480,
    "reader.skipped_record_type.request": 500,
    "skipped.skipped_record_type.request": 500,
    "reader.skipped_record_type.metadata": 500,
    "skipped.skipped_record_type.metadata": 500,
    "reader.skipped_non_html": 20,
    "skipped.skipped_non_html": 20,
    "skipped_bytes.skipped_non_html": 40_000,
}


def _warc_run(tmp_path: Path) -> Path:
    stats = {
        "recipe": "warc",
        "documents_out": 470,
        "tokens_written": 0,
        "stages": [
            {"label": "00-read", "counters": WARC_READ},
            {"label": "01-heuristics_v1", "counters": {"docs_in": 480, "docs_out": 470, "dropped.short": 10}},
        ],
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stats.json").write_text(json.dumps(stats))
    return run_dir


def test_warc_records_that_are_not_documents_are_skipped_not_dropped(tmp_path: Path) -> None:
    out = build_report(_warc_run(tmp_path))
    data = json.loads((out / "mixture.json").read_text())
    read, heuristics = data["funnel"]
    assert (read["stage"], read["records_in"], read["documents_out"], read["dropped"]) == (
        "read",
        1500,
        480,
        {},
    )
    assert read["skipped"]["skipped_record_type.request"] == 500 and read["skipped_records"] == 1020
    assert heuristics["dropped"] == {"short": 10} and heuristics["skipped"] == {}
    reasons = {r["reason"]: r for r in data["skipped"]["reasons"]}
    assert reasons["skipped_non_html"] == {
        "reason": "skipped_non_html",
        "unit": "records",
        "count": 20,
        "bytes": 40_000,
    }
    assert data["skipped"]["failed_files"] == []  # the run has no skipped/ table
    page = (out / "index.html").read_text()
    assert 'data-skipped-reason="skipped_record_type.request"' in page
    assert 'id="skipped"' in page and "skipped: skipped_record_type.metadata" in page
    assert "dropped: skipped_record_type" not in page


def test_a_real_run_lists_its_unreadable_files_by_name(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    rng = random.Random(3)
    texts = [f"Page {i} says " + " ".join(f"w{rng.randrange(999)}" for _ in range(20)) for i in range(3)]
    (root / "good.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    pq.write_table(pa.table({"body": ["nothing to read"]}), root / "bad.parquet")
    recipe = parse_recipe(
        {
            "name": "report-skips",
            "input": {"paths": [str(root)], "part_bytes": 1},
            "stages": [{"stage": "tokenize"}],
        }
    )
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)  # writes the report as it finishes
    data = json.loads((run_dir / "report" / "mixture.json").read_text())
    (failed,) = data["skipped"]["failed_files"]
    assert (failed["file"], failed["reason"]) == ("bad.parquet", "corrupt_file")
    assert failed["detail"].startswith("ValueError: ")
    assert data["skipped"]["files_failed"] == 1 and data["funnel"][0]["failed_files"] == 1
    page = (run_dir / "report" / "index.html").read_text()
    assert 'id="failed-files"' in page and 'data-file="bad.parquet"' in page
    assert 'data-skipped-reason="corrupt_file" data-count="1">corrupt_file 1 file<' in page


def test_only_files_that_failed_are_listed_by_name(tmp_path: Path) -> None:
    run_dir = _warc_run(tmp_path)
    rows = [
        Skipped("site/empty.html", "file", None, "empty_document", 0),  # a page skipped whole: a record
        Skipped("b.warc.gz", "byte", 1234, "skipped_record_type.request", 310),
        Skipped("a.warc.gz", "file", None, "corrupt_file", None, "OSError: unexpected end of data"),
    ]
    (run_dir / "skipped").mkdir()
    pq.write_table(skip_table(rows), run_dir / "skipped" / "part-00000.parquet")
    data = json.loads((build_report(run_dir) / "mixture.json").read_text())
    assert data["skipped"]["failed_files"] == [
        {"file": "a.warc.gz", "reason": "corrupt_file", "detail": "OSError: unexpected end of data"}
    ]
