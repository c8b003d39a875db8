"""JSONL reading: compression, field options, stable derived ids, skipped lines and damage."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import random
import zlib
from pathlib import Path

import pytest
import zstandard

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
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


def test_invalid_utf8_and_lone_surrogates_are_replaced_when_allowed(tmp_path: Path) -> None:
    data = b'{"id": "x", "text": "caf\xe9 ok"}\n{"id": "y", "text": "half \\ud800 pair"}\n'
    path = write(tmp_path / "enc.jsonl", data)
    stats = Stats()
    rows = read_rows(path, stats, max_replacement_share=1.0)
    assert rows[0]["text"] == "caf\ufffd ok"
    assert rows[1]["text"] == "half \ufffd pair"
    assert stats.counters["reader.invalid_utf8"] == 1
    assert stats.counters["reader.documents_with_replacements"] == 2


def test_documents_with_decoding_replacements_are_skipped_by_default(tmp_path: Path) -> None:
    data = (
        b'{"id": "x", "text": "caf\xe9 ok"}\n'
        b'{"id": "y", "text": "half \\ud800 pair"}\n'
        b'{"id": "z", "text": "real \xef\xbf\xbd and \\ufffd stay"}\n'  # U+FFFD the input really holds
        b'{"id": "u", "text": "clean text", "url": "https://x.example/\xff"}\n'  # damage outside the text
    )
    path = write(tmp_path / "enc.jsonl", data)
    stats = Stats()
    skips = SkipLog("enc.jsonl", stats)
    rows = read_rows(path, stats, skips=skips)
    assert [r["source_id"] for r in rows] == ["z", "u"]
    assert rows[0]["text"] == "real \ufffd and \ufffd stay"
    assert rows[1]["url"] == "https://x.example/\ufffd"
    assert [(s.reason, s.unit, s.position) for s in skips.records] == [
        ("undecodable_text", "line", 1),
        ("undecodable_text", "line", 2),
    ]
    assert "1 of 7 characters" in skips.records[0].detail
    assert stats.counters["reader.undecodable_text"] == 2
    assert "reader.documents_with_replacements" not in stats.counters


def test_replacement_share_limit_is_a_share_of_the_text(tmp_path: Path) -> None:
    # One bad byte in a text of 100 characters: a share of 1%.
    path = write(tmp_path / "share.jsonl", b'{"text": "' + b"a" * 99 + b'\xff"}\n')
    assert len(read_rows(path, Stats(), max_replacement_share=0.01)) == 1
    assert read_rows(path, Stats(), max_replacement_share=0.0099) == []
    with pytest.raises(ValueError, match="max_replacement_share"):
        read_rows(path, Stats(), max_replacement_share=1.5)


def test_skipped_lines_are_recorded_with_line_numbers_and_sizes(tmp_path: Path) -> None:
    objects = [{"text": "x" * 5000}, b"not json", [1, 2], {"id": "n"}, {"text": "kept"}]
    path = write(tmp_path / "skips.jsonl.gz", lines_bytes(objects))
    stats = Stats()
    skips = SkipLog("crawl/skips.jsonl.gz", stats)
    rows = read_rows(path, stats, skips=skips, max_document_bytes=1000, name="crawl/skips.jsonl.gz")
    assert [r["id"] for r in rows] == ["crawl/skips.jsonl.gz:5"]
    sizes = [len(json.dumps(o).encode()) if not isinstance(o, bytes) else len(o) for o in objects]
    assert [(s.file, s.unit, s.position, s.reason, s.bytes) for s in skips.records] == [
        ("crawl/skips.jsonl.gz", "line", 1, "too_large", sizes[0]),
        ("crawl/skips.jsonl.gz", "line", 2, "bad_json", sizes[1]),
        ("crawl/skips.jsonl.gz", "line", 3, "bad_json", sizes[2]),
        ("crawl/skips.jsonl.gz", "line", 4, "missing_text", sizes[3]),
    ]
    assert stats.counters["reader.bad_json"] == 2  # the counters stay, counted by the log


def test_a_skip_log_is_made_from_the_name_when_none_is_given(tmp_path: Path) -> None:
    path = write(tmp_path / "one.jsonl", b"nope\n")
    stats = Stats()
    assert read_rows(path, stats) == []
    assert stats.counters["reader.bad_json"] == 1


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


def compress(codec: str, data: bytes) -> bytes:
    if codec == "gz":
        return gzip.compress(data)
    if codec == "zst":
        return zstandard.ZstdCompressor().compress(data)
    if codec == "bz2":
        return bz2.compress(data)
    return lzma.compress(data)


def decompressed_prefix(codec: str, data: bytes) -> bytes:
    """What a cut-off file decompresses to, computed with the plain decompressor objects in one call."""
    if codec == "gz":
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data)
    if codec == "zst":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if codec == "bz2":
        return bz2.BZ2Decompressor().decompress(data)
    return lzma.LZMADecompressor().decompress(data)


def random_lines(count: int, seed: int) -> bytes:
    # Incompressible text, so a cut through the compressed file lands at a known share of the lines.
    rng = random.Random(seed)
    objects = [
        {
            "id": str(i),
            "text": "".join(rng.choice("abcdefghij klmnopqrstuvwxyz") for _ in range(rng.randint(20, 400))),
        }
        for i in range(count)
    ]
    return lines_bytes(objects)


@pytest.mark.parametrize("codec", ["gz", "zst", "bz2", "xz"])
@pytest.mark.parametrize(("count", "cut"), [(300, 0.3), (300, 0.8), (3000, 0.45), (3000, 0.97), (3000, -1)])
def test_truncated_compressed_file_keeps_every_whole_line(
    tmp_path: Path, codec: str, count: int, cut: float, caplog
) -> None:
    data = random_lines(count, seed=count)
    whole = compress(codec, data)
    size = len(whole) - 1 if cut == -1 else int(len(whole) * cut)  # -1: only the last byte is missing
    path = tmp_path / f"cut.jsonl.{codec}"
    path.write_bytes(whole[:size])
    prefix = decompressed_prefix(codec, whole[:size])
    *complete, partial = prefix.split(b"\n")
    stats = Stats()
    skips = SkipLog("cut", stats)
    rows = read_rows(path, stats, skips=skips)
    assert [r["source_id"] for r in rows] == [str(i) for i in range(len(complete))]
    expected = [("truncated_line", "line", len(complete) + 1)] if partial else []
    assert [(s.reason, s.unit, s.position) for s in skips.records] == [
        *expected,
        ("corrupt_file", "file", None),
    ]
    if partial:
        assert skips.records[0].bytes == len(partial)
    assert f"lines from {len(complete) + 1} on are lost" in skips.records[-1].detail
    assert f"ends at byte {size}" in skips.records[-1].detail
    assert stats.counters["reader.corrupt_file"] == 1
    assert any(f"before line {len(complete) + 1}" in m for m in caplog.messages)


def test_small_truncated_gzip_keeps_its_lines(tmp_path: Path) -> None:
    # Reading 1 MiB blocks through a file object lost every line of a file this small.
    data = lines_bytes([{"id": str(i), "text": f"line {i}"} for i in range(50)])
    whole = gzip.compress(data)
    path = tmp_path / "small.jsonl.gz"
    path.write_bytes(whole[:-4])  # the gzip trailer's size field is missing; every line decompresses
    rows = read_rows(path, Stats())
    assert [r["source_id"] for r in rows] == [str(i) for i in range(50)]


def test_multi_frame_zstd_cut_in_a_later_frame_keeps_the_earlier_frames(tmp_path: Path) -> None:
    objects = [{"id": str(i), "text": hashlib.sha256(str(i).encode()).hexdigest() * 40} for i in range(3000)]
    compressor = zstandard.ZstdCompressor()
    frames = [compressor.compress(lines_bytes(objects[i : i + 500])) for i in range(0, 3000, 500)]
    whole = b"".join(frames)
    cut = len(b"".join(frames[:3])) + len(frames[3]) // 2
    path = tmp_path / "frames.jsonl.zst"
    path.write_bytes(whole[:cut])
    stats = Stats()
    skips = SkipLog("frames", stats)
    rows = read_rows(path, stats, skips=skips)
    assert 1500 <= len(rows) < 2000
    assert [r["source_id"] for r in rows] == [str(i) for i in range(len(rows))]
    assert f"frame that starts at byte {len(b''.join(frames[:3]))}" in skips.records[-1].detail


def test_consecutive_streams_and_padding_read_whole(tmp_path: Path) -> None:
    first = lines_bytes([{"text": "one"}])
    second = lines_bytes([{"text": "two"}])
    for codec in ("gz", "bz2", "xz"):
        path = tmp_path / f"multi.jsonl.{codec}"
        path.write_bytes(
            compress(codec, first) + compress(codec, second) + (b"\0" * 8 if codec == "xz" else b"")
        )
        stats = Stats()
        assert [r["text"] for r in read_rows(path, stats)] == ["one", "two"]
        assert "reader.corrupt_file" not in stats.counters


def test_corrupt_data_in_the_middle_keeps_the_lines_before_it(tmp_path: Path) -> None:
    first = gzip.compress(random_lines(200, seed=1))
    broken = bytearray(gzip.compress(random_lines(200, seed=2)))
    broken[len(broken) // 2 : len(broken) // 2 + 50] = b"\x00" * 50
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(first + bytes(broken))
    stats = Stats()
    skips = SkipLog("broken", stats)
    rows = read_rows(path, stats, skips=skips)
    assert len(rows) >= 200  # the whole first member, and what of the second decompressed before the damage
    assert [r["id"] for r in rows] == [f"{path}:{i}" for i in range(1, len(rows) + 1)]
    assert skips.records[-1].reason == "corrupt_file"
    assert f"member that starts at byte {len(first)}" in skips.records[-1].detail


def test_needs_a_text_or_html_field(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", lines_bytes([{"text": "t"}]))
    with pytest.raises(ValueError, match="text_field or html_field"):
        read_rows(path, Stats(), text_field=None)
