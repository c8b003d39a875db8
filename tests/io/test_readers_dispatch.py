"""Format detection, input expansion (globs, directories, fsspec URIs) and reader dispatch."""

from __future__ import annotations

import gzip
import inspect
import json
import shutil
from pathlib import Path

import fsspec
import pytest

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io import FORMATS, detect_format, expand_inputs, read_batches
from corpusmill.io.inputs import list_inputs


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("CC-MAIN-2024-10/segments/x/wet/CC-MAIN-0001.warc.wet.gz", "wet"),
        ("s3://bucket/crawl/file.warc.gz", "warc"),
        ("plain.WARC", "warc"),
        ("page.htm", "html"),
        ("0001.html.gz", "html"),
        ("docs.jsonl.zst", "jsonl"),
        ("dolma/v1/part-0001.json.gz", "jsonl"),
        ("table.parquet", "parquet"),
    ],
)
def test_detect_format_from_the_name(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_unknown_suffix_names_the_file_and_the_known_suffixes() -> None:
    with pytest.raises(ValueError, match=r"notes\.txt.*\.warc\.gz.*\.parquet"):
        detect_format("data/notes.txt")
    with pytest.raises(ValueError, match=r"metadata\.json"):
        detect_format("metadata.json")  # a plain .json file is one JSON value, not JSON Lines


def _tree(root: Path) -> None:
    (root / "a" / "deep").mkdir(parents=True)
    for rel in ("a/one.warc.gz", "a/deep/two.jsonl", "a/deep/notes.txt", "b.parquet", "c.html"):
        (root / rel).write_bytes(b"")


def test_directories_expand_recursively_to_known_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert expand_inputs([str(tmp_path / "a")]) == [
        str(tmp_path / "a" / "deep" / "two.jsonl"),
        str(tmp_path / "a" / "one.warc.gz"),
    ]


def test_globs_overlapping_patterns_are_sorted_and_deduplicated(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = expand_inputs([str(tmp_path / "*.html"), str(tmp_path / "**" / "*.warc.gz"), str(tmp_path / "a")])
    assert found == sorted(set(found))
    assert found == [
        str(tmp_path / "a" / "deep" / "two.jsonl"),
        str(tmp_path / "a" / "one.warc.gz"),
        str(tmp_path / "c.html"),
    ]
    # A file named explicitly is taken as is, even with a suffix detection does not know.
    assert expand_inputs([str(tmp_path / "a" / "deep" / "notes.txt")]) == [str(tmp_path / "a/deep/notes.txt")]


def test_a_pattern_that_matches_nothing_is_named(tmp_path: Path) -> None:
    _tree(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nothing-\*\.warc\.gz"):
        expand_inputs([str(tmp_path / "c.html"), str(tmp_path / "nothing-*.warc.gz")])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(FileNotFoundError, match="empty"):
        expand_inputs([str(tmp_path / "empty")])


def test_wcxb_directory_expands_to_its_html_pages_only(shared_data: Path) -> None:
    found = expand_inputs([str(shared_data / "wcxb-dev")])
    assert len(found) == 1497
    assert all(path.endswith(".html.gz") for path in found)  # metadata.json and ground truth are left out


def test_read_batches_dispatches_by_detected_format(shared_data: Path) -> None:
    stats = Stats()
    uris = expand_inputs([str(shared_data / "warc")])
    assert len(uris) == 4
    docs = {uri: sum(b.num_rows for b in read_batches(uri, None, batch_size=50, stats=stats)) for uri in uris}
    assert docs[str(shared_data / "warc" / "whirlwind.warc.wet.gz")] == 1
    assert sum(docs.values()) == 1 + 1 + 37
    assert stats.counters["reader.documents"] == 39


def test_explicit_format_and_options_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text(json.dumps({"body": "hello"}) + "\n")
    batches = list(read_batches(str(path), "jsonl", batch_size=10, stats=Stats(), text_field="body"))
    assert batches[0].column(schema.TEXT).to_pylist() == ["hello"]
    with pytest.raises(ValueError, match=r"warc reader .*text_field.*max_document_bytes"):
        read_batches(str(path), "warc", batch_size=10, stats=Stats(), text_field="body")
    with pytest.raises(ValueError, match="unknown input format 'csv'"):
        read_batches(str(path), "csv", batch_size=10, stats=Stats())


def test_read_batches_hands_the_skip_log_to_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "kept"}\nnot json\n{"text": 1}\n')
    stats = Stats()
    skips = SkipLog("docs.jsonl", stats)
    batches = list(read_batches(str(path), None, batch_size=10, stats=stats, skips=skips, name="docs.jsonl"))
    assert sum(b.num_rows for b in batches) == 1
    assert [(s.file, s.position, s.reason) for s in skips.records] == [
        ("docs.jsonl", 2, "bad_json"),
        ("docs.jsonl", 3, "missing_text"),
    ]
    assert stats.counters["reader.bad_json"] == 1


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_reader_takes_a_skip_log_and_the_replacement_limit(fmt: str) -> None:
    params = inspect.signature(FORMATS[fmt]).parameters
    for option in ("skips", "max_replacement_share", "name"):
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, option
    assert params["max_replacement_share"].default == 0.0


def test_any_fsspec_filesystem_works_end_to_end(shared_data: Path) -> None:
    memory = fsspec.filesystem("memory")
    try:
        with memory.open("/corpus/crawl/whirlwind.warc.gz", "wb") as handle:
            handle.write((shared_data / "warc" / "whirlwind.warc.gz").read_bytes())
        with memory.open("/corpus/pages/one.html.gz", "wb") as handle:
            handle.write(gzip.compress(b"<html><head><title>t</title></head><body>hi</body></html>"))
        uris = expand_inputs(["memory://corpus"])
        assert uris == ["memory:///corpus/crawl/whirlwind.warc.gz", "memory:///corpus/pages/one.html.gz"]
        files = list_inputs(["memory://corpus"])
        assert [(f.uri, f.name) for f in files] == list(
            zip(uris, ["crawl/whirlwind.warc.gz", "pages/one.html.gz"], strict=True)
        )
        stats = Stats()
        rows = [
            r
            for f in files
            for b in read_batches(f.uri, None, batch_size=5, stats=stats, name=f.name)
            for r in b.to_pylist()
        ]
        assert [r["source"] for r in rows] == [f.name for f in files]
        assert rows[0]["url"] == "https://an.wikipedia.org/wiki/Escopete"
        assert rows[0]["id"].startswith("crawl/whirlwind.warc.gz:") and rows[0]["source_id"].startswith(
            "urn:uuid:"
        )
        assert rows[1]["id"] == "pages/one.html.gz" and rows[1]["url"] is None and "hi" in rows[1]["html"]
    finally:
        memory.rm("/corpus", recursive=True)


def test_local_relative_and_file_uri_patterns_resolve_to_absolute_paths(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(Path(__file__), tmp_path / "x.jsonl")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["x.jsonl", f"file://{tmp_path}/x.jsonl", "./*.jsonl"]) == [
        str(tmp_path / "x.jsonl")
    ]
