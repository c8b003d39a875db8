"""Parquet reading: streaming by batch, field options, derived ids by row index, skipped rows, damage."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.jsonl import read_jsonl
from corpusmill.io.parquet import read_parquet


def expected_id(source: str, row: int) -> str:
    return f"{source}:{row}"


def read_rows(path: Path, stats: Stats, batch_size: int = 100, **options) -> list[dict]:
    rows = []
    for batch in read_parquet(str(path), batch_size=batch_size, stats=stats, **options):
        assert batch.schema == schema.READER_SCHEMA
        assert batch.num_rows <= batch_size
        rows.extend(batch.to_pylist())
    return rows


def test_rows_with_text_become_documents_with_stable_ids(tmp_path: Path) -> None:
    n = 45
    table = pa.table(
        {
            "id": [None if i % 7 == 0 else f"doc-{i}" for i in range(n)],
            "text": [None if i % 10 == 3 else ("" if i == 4 else f"text {i}") for i in range(n)],
            "url": [f"https://p.example/{i}" for i in range(n)],
            "language": ["en"] * n,
            "unused": list(range(n)),
        }
    )
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path, row_group_size=16)
    stats = Stats()
    rows = read_rows(path, stats, batch_size=10, lang_field="language")
    kept = [i for i in range(n) if i % 10 != 3 and i != 4]
    assert [r["text"] for r in rows] == [f"text {i}" for i in kept]
    assert [r["id"] for r in rows] == [expected_id(str(path), i) for i in kept]
    assert [r["source_id"] for r in rows] == [None if i % 7 == 0 else f"doc-{i}" for i in kept]
    assert [r["url"] for r in rows] == [f"https://p.example/{i}" for i in kept]
    assert all(r["lang"] == "en" and r["source"] == str(path) and r["html"] is None for r in rows)
    assert stats.counters["reader.missing_text"] == n - len(kept)
    assert stats.counters["reader.documents"] == len(kept)
    assert [r["id"] for r in read_rows(path, Stats(), batch_size=7)] == [r["id"] for r in rows]


def test_field_options_nested_columns_and_integer_ids(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": pa.array([10, 11, 12], pa.int64()),
            "content": ["alpha", None, "gamma"],
            "page": ["<p>a</p>", "<p>b</p>", None],
            "metadata": [{"url": "https://n.example/a"}, {"url": None}, {"url": "https://n.example/c"}],
        }
    )
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    rows = read_rows(
        path, Stats(), text_field="content", id_field="key", url_field="metadata.url", html_field="page"
    )
    assert [(r["source_id"], r["text"], r["html"], r["url"]) for r in rows] == [
        ("10", "alpha", "<p>a</p>", "https://n.example/a"),
        ("11", None, "<p>b</p>", None),
        ("12", "gamma", None, "https://n.example/c"),
    ]


def test_absent_optional_columns_give_nulls_and_derived_ids(tmp_path: Path) -> None:
    path = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"text": ["one", "two"]}), path)
    rows = read_rows(path, Stats())
    assert [r["id"] for r in rows] == [expected_id(str(path), 0), expected_id(str(path), 1)]
    assert all(r["url"] is None and r["lang"] is None for r in rows)


def test_binary_text_with_invalid_utf8_is_replaced_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"text": pa.array([b"fine", b"caf\xe9"], pa.binary())}), path)
    stats = Stats()
    assert [r["text"] for r in read_rows(path, stats, max_replacement_share=1.0)] == ["fine", "caf\ufffd"]
    assert stats.counters["reader.invalid_utf8"] == 1
    assert stats.counters["reader.documents_with_replacements"] == 1


def test_binary_text_with_invalid_utf8_is_skipped_by_default(tmp_path: Path) -> None:
    values = [b"fine", b"caf\xe9", "real \ufffd".encode(), None, b"x" * 98 + b"\xff\xfe"]
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"text": pa.array(values, pa.binary())}), path)
    stats = Stats()
    skips = SkipLog("binary.parquet", stats)
    assert [r["text"] for r in read_rows(path, stats, skips=skips)] == ["fine", "real \ufffd"]
    assert [(s.reason, s.unit, s.position) for s in skips.records] == [
        ("undecodable_text", "row", 1),
        ("missing_text", "row", 3),
        ("undecodable_text", "row", 4),
    ]
    assert "2 of 100 characters" in skips.records[2].detail
    # Two bad bytes in 100 characters is a share of 2%.
    kept = read_rows(path, Stats(), max_replacement_share=0.02)
    assert [r["id"] for r in kept] == [f"{path}:{i}" for i in (0, 2, 4)]


def test_skipped_rows_are_recorded_in_row_order_with_sizes(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    texts = ["x" * 3000, None, "ok", "", "y" * 2000, "fine"]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=4)
    stats = Stats()
    skips = SkipLog("dump/rows.parquet", stats)
    rows = read_rows(
        path, stats, batch_size=3, skips=skips, max_document_bytes=1000, name="dump/rows.parquet"
    )
    assert [r["id"] for r in rows] == ["dump/rows.parquet:2", "dump/rows.parquet:5"]
    assert [(s.file, s.unit, s.position, s.reason, s.bytes) for s in skips.records] == [
        ("dump/rows.parquet", "row", 0, "too_large", 3000),
        ("dump/rows.parquet", "row", 1, "missing_text", None),
        ("dump/rows.parquet", "row", 3, "missing_text", None),
        ("dump/rows.parquet", "row", 4, "too_large", 2000),
    ]
    assert stats.counters["reader.too_large"] == 2
    assert stats.counters["reader.missing_text"] == 2


def test_text_that_is_not_a_string_is_missing_as_in_jsonl(tmp_path: Path) -> None:
    records = [{"id": "a", "text": 1}, {"id": "b", "text": 2}]
    parquet_path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array([1, 2], pa.int64())}), parquet_path)
    jsonl_path = tmp_path / "numbers.jsonl"
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    outcomes = []
    for path, reader in ((parquet_path, read_parquet), (jsonl_path, read_jsonl)):
        stats = Stats()
        skips = SkipLog(path.name, stats)
        rows = [r for b in reader(str(path), batch_size=10, stats=stats, skips=skips) for r in b.to_pylist()]
        assert rows == []
        outcomes.append(([s.reason for s in skips.records], stats.counters["reader.missing_text"]))
    assert outcomes[0] == outcomes[1] == (["missing_text", "missing_text"], 2)


def test_html_rows_are_kept_beside_a_text_column_of_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"text": pa.array([7, 8], pa.int32()), "page": ["<p>a</p>", None]}), path)
    stats = Stats()
    skips = SkipLog("mixed.parquet", stats)
    rows = read_rows(path, stats, skips=skips, html_field="page")
    assert [(r["text"], r["html"]) for r in rows] == [(None, "<p>a</p>")]
    assert [(s.reason, s.position) for s in skips.records] == [("missing_text", 1)]
    assert "int32" in skips.records[0].detail


def test_oversized_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "sizes.parquet"
    pq.write_table(pa.table({"text": ["x" * 3000, "small"]}), path)
    stats = Stats()
    assert [r["text"] for r in read_rows(path, stats, max_document_bytes=1000)] == ["small"]
    assert stats.counters["reader.too_large"] == 1


def test_missing_text_column_names_the_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": ["a"], "id": ["1"]}), path)
    with pytest.raises(ValueError, match=r"wrong\.parquet.*'text'.*body, id"):
        read_rows(path, Stats())


def test_corrupt_files_are_counted_and_keep_what_was_readable(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet at all")
    stats = Stats()
    skips = SkipLog("garbage.parquet", stats)
    assert read_rows(garbage, stats, skips=skips) == []
    assert stats.counters["reader.corrupt_file"] == 1
    assert [(s.reason, s.unit, s.position) for s in skips.records] == [("corrupt_file", "file", None)]

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(100)]}), good, row_group_size=50)
    data = bytearray(good.read_bytes())
    second = pq.ParquetFile(good).metadata.row_group(1).column(0)
    start = second.dictionary_page_offset if second.has_dictionary_page else second.data_page_offset
    data[start : start + 40] = b"\xff" * 40  # smash the first page header of the second row group
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    stats = Stats()
    skips = SkipLog("damaged.parquet", stats)
    rows = read_rows(damaged, stats, batch_size=50, skips=skips)
    assert [r["text"] for r in rows] == [f"t{i}" for i in range(50)]
    assert stats.counters["reader.corrupt_file"] == 1
    assert [s.reason for s in skips.records] == ["corrupt_file"]
    assert "rows from 50 on" in skips.records[0].detail
