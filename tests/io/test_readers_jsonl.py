"""JSONL reading: compression, field options, stable derived ids and line-level damage."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import zstandard

from corpusmill.core import schema
from corpusmill.core.stats import Stats
from corpusmill.io.jsonl import read_jsonl


def expected_id(source: str, line_number: int) -> str:
    return f"{source}:{line_number}"


def lines_bytes(objects: list[object]) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objects)


SAMPLE: list[object] = [
    {"id": "a", "text": "first document", "url": "https://x.example/1", "lang": "en"},
    {"text": "no id here", "url": "https://x.example/2"},
    b'{"id": "broken", "text": ',
    {"id": "d", "url": "https://x.example/4"},
    {"id": 5, "text": "integer id"},
    b"",
    {"id": "f", "text": "after a blank line"},
]


def write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def read_rows(path: Path, stats: Stats, **options) -> list[dict]:
    rows = []
    for batch in read_jsonl(str(path), batch_size=options.pop("batch_size", 100), stats=stats, **options):
        assert batch.schema == schema.READER_SCHEMA
        rows.extend(batch.to_pylist())
    return rows


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst"])
def test_good_lines_become_documents_and_bad_ones_are_counted(tmp_path: Path, name: str, caplog) -> None:
    path = write(tmp_path / name, lines_bytes(SAMPLE))
    stats = Stats()
    rows = read_rows(path, stats)
    source = str(path)
    assert [r["id"] for r in rows] == [expected_id(source, n) for n in (1, 2, 5, 7)]
    assert [r["source_id"] for r in rows] == ["a", None, "5", "f"]
    assert [r["text"] for r in rows] == ["first document", "no id here", "integer id", "after a blank line"]
    assert rows[0]["url"] == "https://x.example/1" and rows[0]["lang"] is None  # lang_field defaults to None
    assert all(r["source"] == source and r["html"] is None for r in rows)
    assert stats.counters["reader.bad_json"] == 1
    assert stats.counters["reader.missing_text"] == 1
    assert stats.counters["reader.documents"] == 4
    assert any(f"{source} line 3" in m for m in caplog.messages)
    assert any(f"{source} line 4" in m for m in caplog.messages)


def test_colliding_own_ids_stay_apart_and_names_make_ids(tmp_path: Path) -> None:
    objects = [{"id": str(i), "text": f"doc {i}"} for i in range(3)]
    rows = []
    for name in ("a.jsonl", "b.jsonl"):
        path = write(tmp_path / name, lines_bytes(objects))
        rows += read_rows(path, Stats(), name=f"dump/{name}")
    assert [r["id"] for r in rows] == [f"dump/{n}.jsonl:{i}" for n in "ab" for i in (1, 2, 3)]
    assert [r["source_id"] for r in rows] == ["0", "1", "2"] * 2
    assert {r["source"] for r in rows} == {"dump/a.jsonl", "dump/b.jsonl"}


def test_derived_ids_are_stable_across_reads(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.jsonl", lines_bytes([{"text": f"doc {i}"} for i in range(5)]))
    first = [r["id"] for r in read_rows(path, Stats())]
    second = [r["id"] for r in read_rows(path, Stats())]
    assert first == second
    assert len(set(first)) == 5


def test_field_options_and_dotted_paths(tmp_path: Path) -> None:
    objects = [
        {"doc": "k1", "body": "text one", "metadata": {"url": "https://m.example/1", "language": "de"}},
        {"doc": "k2", "raw": "<p>only html</p>", "metadata": {"url": "https://m.example/2"}},
        {"doc": "k3", "body": 42},
    ]
    path = write(tmp_path / "dolma.json.gz", lines_bytes(objects))
    stats = Stats()
    rows = read_rows(
        path,
        stats,
        text_field="body",
        id_field="doc",
        url_field="metadata.url",
        lang_field="metadata.language",
        html_field="raw",
    )
    assert [(r["source_id"], r["text"], r["html"], r["url"], r["lang"]) for r in rows] == [
        ("k1", "text one", None, "https://m.example/1", "de"),
        ("k2", None, "<p>only html</p>", "https://m.example/2", None),
    ]
    assert stats.counters["reader.missing_text"] == 1


def test_invalid_utf8_and_lone_surrogates_are_replaced(tmp_path: Path) -> None:
    data = b'{"id": "x", "text": "caf\xe9 ok"}\n{"id": "y", "text": "half \\ud800 pair"}\n'
    path = write(tmp_path / "enc.jsonl", data)
    stats = Stats()
    rows = read_rows(path, stats)
    assert rows[0]["text"] == "caf\ufffd ok"
    assert rows[1]["text"] == "half \ufffd pair"
    assert stats.counters["reader.invalid_utf8"] == 1


def test_batches_respect_batch_size(tmp_path: Path) -> None:
    path = write(tmp_path / "many.jsonl.zst", lines_bytes([{"id": str(i), "text": "t"} for i in range(25)]))
    batches = list(read_jsonl(str(path), batch_size=10, stats=Stats()))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert [r["source_id"] for b in batches for r in b.to_pylist()] == [str(i) for i in range(25)]


def test_oversized_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "big.jsonl", lines_bytes([{"text": "x" * 5000}, {"text": "small"}]))
    stats = Stats()
    rows = read_rows(path, stats, max_document_bytes=1000)
    assert [r["text"] for r in rows] == ["small"]
    assert stats.counters["reader.too_large"] == 1


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst"])
def test_truncated_compressed_file_keeps_earlier_lines(tmp_path: Path, name: str) -> None:
    # Random-looking text so the compressed stream is long enough to cut in a meaningful place.
    objects = [{"id": str(i), "text": hashlib.sha256(str(i).encode()).hexdigest() * 40} for i in range(3000)]
    whole = write(tmp_path / ("whole-" + name), lines_bytes(objects)).read_bytes()
    if name.endswith(".zst"):  # several frames, like real zstd writers produce for large files
        compressor = zstandard.ZstdCompressor()
        whole = b"".join(compressor.compress(lines_bytes(objects[i : i + 500])) for i in range(0, 3000, 500))
    path = tmp_path / name
    path.write_bytes(whole[: int(len(whole) * 0.6)])
    stats = Stats()
    rows = read_rows(path, stats)
    assert 0 < len(rows) < 3000
    assert [r["source_id"] for r in rows] == [str(i) for i in range(len(rows))]
    assert stats.counters["reader.corrupt_file"] == 1


def test_needs_a_text_or_html_field(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", lines_bytes([{"text": "t"}]))
    with pytest.raises(ValueError, match="text_field or html_field"):
        read_rows(path, Stats(), text_field=None)
