"""The incremental bench: a later dump with recrawls of base pages, three measured runs, identical outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench.incremental import compare_outputs, main, plan_corpus, write_dump
from bench.report import CHAIN_HEAD

from corpusmill.core.stats import Stats
from corpusmill.io import read_batches


def _records(directory: Path) -> dict[str, tuple[str, bytes]]:
    """Record id -> (url, html) of every response in the directory's WARC files."""
    found = {}
    for path in sorted(directory.glob("*.warc.gz")):
        for batch in read_batches(str(path), "warc", batch_size=100, stats=Stats()):
            for row in batch.to_pylist():
                html = row["html"] if isinstance(row["html"], bytes) else row["html"].encode("utf-8")
                found[row["source_id"]] = (row["url"], html)
    return found


def test_the_new_dump_sorts_last_and_recrawls_base_pages(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "wcxb-dev"
    plan = plan_corpus(files=5, docs_per_file=10, seed=3, data_dir=data)
    assert plan.summary() == {
        "base_files": 5,
        "base_documents": 50,
        "base_near_duplicates": 5,
        "new_files": 1,
        "new_documents": 10,
        "new_near_duplicates": 3,
        "new_copies": 1,
        "new_pages": 6,
    }
    assert max(plan.base) < min(plan.new)  # a later dump's files come after the base's
    write_dump(plan.base, tmp_path / "base", 3, data)
    write_dump(plan.new, tmp_path / "new", 3, data)
    base, new = _records(tmp_path / "base"), _records(tmp_path / "new")
    assert len(base) == 50 and len(new) == 10 and not base.keys() & new.keys()
    base_html_by_url: dict[str, set[bytes]] = {}
    for url, html in base.values():
        base_html_by_url.setdefault(url, set()).add(html)
    recrawled = [(url, html) for url, html in new.values() if url in base_html_by_url]
    unchanged = [(url, html) for url, html in recrawled if html in base_html_by_url[url]]
    assert len(recrawled) == 4 and len(unchanged) == 1  # three edited recrawls, one exact copy
    again = tmp_path / "again"
    write_dump(plan.new, again, 3, data)
    assert _records(again) == new  # variants are made again from their seeds, byte for byte


def test_outputs_that_differ_are_named(tmp_path: Path) -> None:
    files = [
        {"path": "shards/a.bin", "bytes": 3, "sha256": "x"},
        {"path": "documents/p.parquet", "bytes": 1, "sha256": "y"},
    ]
    for name, listed in (("one", files), ("two", [files[0], {**files[1], "sha256": "z"}])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"files": listed}))
    assert compare_outputs(tmp_path / "one", tmp_path / "one") == {
        "identical": True,
        "files": 2,
        "differ": [],
    }
    assert compare_outputs(tmp_path / "one", tmp_path / "two") == {
        "identical": False,
        "files": 2,
        "differ": ["documents/p.parquet"],
    }


def test_quick_bench_prints_both_cpu_figures_and_identical_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    assert main(["--quick", "--cores", "2", "--work", str(tmp_path / "work"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in printed.splitlines()
        if re.match(r"(base|incremental|full rebuild) +\d", line)
    }
    assert set(rows) == {"base", "incremental", "full"}
    assert re.search(r"^incremental\s+5\s+4/5\s+\d+\.\d\d", rows["incremental"])  # the four base parts reused
    assert re.search(r"CPU after start-up: \d+\.\d\d / \d+\.\d\d s = \d\.\d{3}", printed)
    assert 'outputs: identical (manifest.json "files"' in printed
    assert "per million documents" in printed

    report = json.loads(out.read_text())
    runs = report["runs"]
    incremental, full = runs["incremental"], runs["full"]
    assert incremental["cpu_s"] > 0 and full["cpu_s"] > 0
    assert report["ratio"] == pytest.approx(incremental["cpu_s"] / full["cpu_s"])
    assert (incremental["parts"], incremental["reused_parts"], incremental["added_files"]) == (5, 4, 1)
    assert full["parts"] is None and runs["base"]["input_files"] == 4 and full["input_files"] == 5
    assert full["documents_read"] == incremental["documents_read"] == 40
    assert (incremental["documents_out"], incremental["tokens"]) == (full["documents_out"], full["tokens"])
    assert full["dedup_removed"] >= runs["base"]["dedup_removed"]
    # Extraction is what an incremental run saves: it extracted the new file's records only.
    # (The map step runs with the dedup keys as one engine phase: `bench.report.CHAIN_HEAD`.)
    assert incremental["phases"][CHAIN_HEAD]["cpu_s"] < full["phases"][CHAIN_HEAD]["cpu_s"]
    assert report["outputs"]["identical"] and report["outputs"]["files"] > 5
    index = report["index"]
    assert index["bytes"] > 0 and index["documents_read"] == 40
    assert {"documents", "keys", "members"} <= set(index["kinds"])
    assert index["bytes_per_million_documents"] == pytest.approx(index["bytes"] / 40 * 1e6)
