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


def test_warc_records_that_are_not_documents_are_counted_apart_not_dropped(tmp_path: Path) -> None:
    out = build_report(_warc_run(tmp_path))
    data = json.loads((out / "mixture.json").read_text())
    read, heuristics = data["funnel"]
    assert (
        read["stage"],
        read["records_in"],
        read["documents_in"],
        read["documents_out"],
        read["dropped"],
    ) == (
        "read",
        1500,
        500,  # the funnel starts at the records meant to be documents
        480,
        {},
    )
    assert read["not_documents"] == {"metadata": 500, "request": 500} and read["not_documents_total"] == 1000
    assert read["skipped"] == {"skipped_non_html": 20} and read["skipped_records"] == 20
    assert heuristics["dropped"] == {"short": 10} and heuristics["skipped"] == {}
    assert [r["reason"] for r in data["skipped"]["reasons"]] == ["skipped_non_html"]
    assert data["skipped"]["reasons"][0] == {
        "reason": "skipped_non_html",
        "unit": "records",
        "count": 20,
        "bytes": 40_000,
    }
    assert data["skipped"]["records"] == 20 and data["skipped"]["not_documents_total"] == 1000
    assert [(k["record_type"], k["count"]) for k in data["skipped"]["not_documents"]] == [
        ("metadata", 500),
        ("request", 500),
    ]
    assert data["skipped"]["failed_files"] == []  # the run has no skipped/ table
    page = (out / "index.html").read_text()
    assert 'id="not-documents" data-records-read="1500">Records read: 1,500; not documents: ' in page
    assert '<span data-record-type="request" data-count="500">request 500</span>' in page
    assert 'data-skipped-reason="skipped_non_html"' in page and 'id="skipped"' in page
    assert "skipped_record_type" not in page  # neither skipped nor dropped: not in the bars, legend or table
    assert 'data-documents-in="500" data-records-in="1500">500 records<' in page


def test_a_real_warc_run_counts_request_metadata_and_warcinfo_records_apart(
    shared_data: Path, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    whirlwind = (shared_data / "warc" / "whirlwind.warc.gz").read_bytes()
    (root / "whirlwind.warc.gz").write_bytes(whirlwind)  # warcinfo, request, response, metadata
    (root / "cut.warc.gz").write_bytes(whirlwind[:-3000])  # its response cut short, no metadata after it
    recipe = parse_recipe(
        {"name": "warc-report", "input": {"paths": [str(root)]}, "stages": [{"stage": "tokenize"}]}
    )
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    data = json.loads((run_dir / "report" / "mixture.json").read_text())
    read = data["funnel"][0]
    assert read["not_documents"] == {"metadata": 1, "request": 2, "warcinfo": 2}
    assert (read["records_in"], read["documents_in"], read["documents_out"]) == (7, 2, 1)
    assert read["skipped"] == {"corrupt_file": 1, "truncated_record": 1}  # a real loss stays, with its reason
    assert read["skipped_records"] == 1 and read["dropped"] == {}
    kinds = {k["record_type"]: k for k in data["skipped"]["not_documents"]}
    assert set(kinds) == {"metadata", "request", "warcinfo"} and all(k["bytes"] > 0 for k in kinds.values())
    page = (run_dir / "report" / "index.html").read_text()
    assert "Records read: 7; not documents: " in page and "skipped_record_type" not in page
    assert 'data-skipped-reason="truncated_record"' in page


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
