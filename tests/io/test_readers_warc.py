"""WARC and WET reading on the real crawl samples, damaged copies of them, and small hand-built records."""

from __future__ import annotations

import gzip
import re
import shutil
import zlib
from pathlib import Path

import fastwarc.warc as fw
import pyarrow as pa
import pytest
import zstandard
from warc_builders import http, warc_record

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.langcodes import first_language
from corpusmill.io.warc import read_warc, read_wet

DOLMA = ("dolma-sample-0000.warc.gz", "dolma-sample-0001.warc.gz")


# --- independent views of the test files -------------------------------------------------------------


def gzip_members(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start offset, end offset, decompressed bytes) of every gzip member, found with plain zlib."""
    members = []
    pos = 0
    while pos < len(data):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        out = inflater.decompress(data[pos:])
        end = len(data) - len(inflater.unused_data)
        members.append((pos, end, out))
        pos = end
    return members


def parse_records(raw: bytes) -> list[dict]:
    """Minimal WARC parser for uncompressed bytes: headers plus block of every record."""
    records = []
    pos = 0
    while pos < len(raw):
        head_end = raw.index(b"\r\n\r\n", pos)
        lines = raw[pos:head_end].decode("utf-8").split("\r\n")
        assert lines[0].startswith("WARC/1.")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers["content-length"])
        block = raw[head_end + 4 : head_end + 4 + length]
        records.append({"headers": headers, "block": block})
        pos = head_end + 4 + length + 4
    return records


def responses(path: Path) -> list[dict]:
    """Response records of a gzipped WARC with their HTTP status, content type and raw body length."""
    out = []
    for record in parse_records(gzip.decompress(path.read_bytes())):
        if record["headers"]["warc-type"] != "response":
            continue
        http_head, _, body = record["block"].partition(b"\r\n\r\n")
        content_type = re.search(rb"(?im)^content-type:\s*([^;\r\n]+)", http_head)
        out.append(
            {
                "id": record["headers"]["warc-record-id"].strip("<>"),
                "url": record["headers"]["warc-target-uri"].strip("<>"),
                "status": int(http_head.split(b" ", 2)[1]),
                "type": content_type.group(1).strip().lower().decode() if content_type else None,
                "body_len": len(body),
                "block_len": len(record["block"]),
            }
        )
    return out


def read_all(path: Path | str, stats: Stats, batch_size: int = 100, **options) -> list[dict]:
    rows = []
    for batch in read_warc(str(path), batch_size=batch_size, stats=stats, **options):
        assert batch.schema == schema.READER_SCHEMA
        rows.extend(batch.to_pylist())
    return rows


# --- real files ----------------------------------------------------------------------------------------


def test_whirlwind_yields_its_one_html_response(shared_data: Path) -> None:
    path = shared_data / "warc" / "whirlwind.warc.gz"
    stats = Stats()
    rows = read_all(path, stats)
    expected = responses(path)
    assert len(expected) == 1
    assert len(rows) == 1
    row = rows[0]
    assert row["source_id"] == expected[0]["id"] and row["source_id"].startswith("urn:uuid:")
    assert row["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert row["source"] == str(path)
    assert row["text"] is None and row["lang"] is None
    assert "Escopete" in row["html"] and row["html"].rstrip().endswith("</html>")
    for record_type in ("warcinfo", "request", "metadata"):
        assert stats.counters[f"reader.skipped_record_type.{record_type}"] == 1
    assert stats.counters["reader.documents"] == 1
    assert "reader.corrupt_file" not in stats.counters


def test_every_record_not_kept_is_a_skip_row_at_its_offset(shared_data: Path) -> None:
    path = shared_data / "warc" / "whirlwind.warc.gz"
    stats = Stats()
    skips = SkipLog("crawl/whirlwind.warc.gz", stats)
    rows = read_all(path, stats, skips=skips, name="crawl/whirlwind.warc.gz")
    members = gzip_members(path.read_bytes())
    types = [re.search(rb"WARC-Type: (\w+)", out).group(1).decode() for _, _, out in members]
    offsets = dict(zip(types, (start for start, _, _ in members), strict=True))
    assert [(s.file, s.unit, s.position, s.reason) for s in skips.records] == [
        ("crawl/whirlwind.warc.gz", "byte", offsets[t], f"skipped_record_type.{t}")
        for t in types
        if t != "response"
    ]
    assert rows[0]["id"] == f"crawl/whirlwind.warc.gz:{offsets['response']}"
    assert all(s.bytes and s.bytes > 0 for s in skips.records)


def test_dolma_samples_give_every_response_with_clean_ids_and_urls(shared_data: Path) -> None:
    stats = Stats()
    rows, expected = [], []
    for name in DOLMA:
        path = shared_data / "warc" / name
        batches = list(read_warc(str(path), batch_size=8, stats=stats))
        assert all(b.num_rows <= 8 for b in batches)
        rows.extend(r for b in batches for r in b.to_pylist())
        expected.extend(responses(path))
    assert len(expected) == 37
    assert sorted(r["source_id"] for r in rows) == sorted(e["id"] for e in expected)
    by_id = {e["id"]: e for e in expected}
    for row in rows:
        assert row["url"] == by_id[row["source_id"]]["url"]
        assert not row["url"].startswith("<") and row["url"].startswith("https://")
        assert row["html"] and row["text"] is None
    # Every record is accounted for exactly once.
    outcomes = sum(
        n for key, n in stats.counters.items() if key.startswith("reader.") and key != "reader.records"
    )
    assert stats.counters["reader.records"] == outcomes


def test_chunked_payloads_are_decoded_like_fastwarc_does(shared_data: Path) -> None:
    path = shared_data / "warc" / DOLMA[0]
    reference = {}
    with open(path, "rb") as handle:
        for record in fw.ArchiveIterator(handle, auto_decode="all", record_types=fw.WarcRecordType.response):
            reference[record.record_id.strip("<>")] = record.reader.read().decode("utf-8")
    raw = gzip.decompress(path.read_bytes())
    assert raw.count(b"Transfer-Encoding: chunked") >= 2  # the sample really has chunked bodies
    rows = {r["source_id"]: r["html"] for r in read_all(path, Stats())}
    assert rows == reference


def test_wet_conversion_record_becomes_text_with_language(shared_data: Path) -> None:
    path = shared_data / "warc" / "whirlwind.warc.wet.gz"
    stats = Stats()
    rows = [r for b in read_wet(str(path), batch_size=10, stats=stats) for r in b.to_pylist()]
    records = parse_records(gzip.decompress(path.read_bytes()))
    conversion = next(r for r in records if r["headers"]["warc-type"] == "conversion")
    assert len(rows) == 1
    row = rows[0]
    assert row["source_id"] == conversion["headers"]["warc-record-id"].strip("<>")
    assert row["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert row["html"] is None
    assert row["text"] == conversion["block"].decode("utf-8")
    assert conversion["headers"]["warc-identified-content-language"].startswith("spa")
    assert row["lang"] == "es"
    assert stats.counters["reader.skipped_record_type.warcinfo"] == 1


def test_documents_over_the_size_limit_are_skipped_and_counted(shared_data: Path) -> None:
    path = shared_data / "warc" / DOLMA[0]
    limit = 20_000
    expected = responses(path)
    big = [e for e in expected if e["body_len"] > limit]
    assert 0 < len(big) < len(expected)
    stats = Stats()
    skips = SkipLog("dolma", stats)
    rows = read_all(path, stats, max_document_bytes=limit, skips=skips)
    assert stats.counters["reader.too_large"] == len(big)
    assert {r["source_id"] for r in rows} == {e["id"] for e in expected if e["body_len"] <= limit}
    too_large = [s for s in skips.records if s.reason == "too_large"]
    assert sorted(s.bytes for s in too_large) == sorted(e["block_len"] for e in big)  # the record's block


# --- damaged copies --------------------------------------------------------------------------------------


def _response_members(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, record id) of the gzip members that hold response records."""
    found = []
    for start, end, out in gzip_members(data):
        if b"WARC-Type: response" in out[:2000]:
            record_id = re.search(rb"WARC-Record-ID: <([^>]+)>", out).group(1).decode()
            found.append((start, end, record_id))
    return found


def test_truncated_file_keeps_documents_before_the_cut(shared_data: Path, tmp_path: Path, caplog) -> None:
    data = (shared_data / "warc" / DOLMA[0]).read_bytes()
    members = _response_members(data)
    start, end, cut_id = members[9]
    damaged = tmp_path / "truncated.warc.gz"
    damaged.write_bytes(data[: (start + end) // 2])
    stats = Stats()
    rows = read_all(damaged, stats)
    assert [r["source_id"] for r in rows] == [m[2] for m in members[:9]]
    assert cut_id not in {r["source_id"] for r in rows}
    assert stats.counters["reader.corrupt_file"] == 1
    assert stats.counters["reader.truncated_record"] == 1
    assert any("truncated.warc.gz" in m and f"byte {start}" in m for m in caplog.messages)


def test_cut_inside_the_last_record_is_detected(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "warc" / "whirlwind.warc.gz").read_bytes()
    _, end, _ = _response_members(data)[0]
    damaged = tmp_path / "short.warc.gz"
    damaged.write_bytes(data[: end - 200])  # the response record loses its end
    stats = Stats()
    skips = SkipLog("short", stats)
    assert read_all(damaged, stats, skips=skips) == []
    assert stats.counters["reader.corrupt_file"] == 1
    assert stats.counters["reader.truncated_record"] == 1
    truncated = next(s for s in skips.records if s.reason == "truncated_record")
    assert truncated.position == _response_members(data)[0][0] and "cut short" in truncated.detail


def test_garbage_inside_a_record_loses_only_that_record(shared_data: Path, tmp_path: Path, caplog) -> None:
    data = (shared_data / "warc" / DOLMA[0]).read_bytes()
    members = _response_members(data)
    start, end, hit_id = members[5]
    middle = (start + end) // 2
    damaged = tmp_path / "garbage.warc.gz"
    damaged.write_bytes(data[:middle] + b"\x00not gzip at all\xff" * 64 + data[middle:])
    stats = Stats()
    rows = read_all(damaged, stats)
    assert [r["source_id"] for r in rows] == [m[2] for m in members if m[2] != hit_id]
    assert stats.counters["reader.corrupt_file"] == 1
    assert stats.counters["reader.corrupt_records"] == 1
    assert stats.counters["reader.resynced"] >= 1
    assert "reader.bad_warc_header" not in stats.counters
    assert any("garbage.warc.gz" in m and f"byte {start}" in m for m in caplog.messages)


def test_garbage_between_records_loses_nothing(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "warc" / DOLMA[1]).read_bytes()
    members = _response_members(data)
    boundary = members[3][0]
    damaged = tmp_path / "between.warc.gz"
    damaged.write_bytes(data[:boundary] + b"GARBAGE" * 500 + data[boundary:])
    stats = Stats()
    skips = SkipLog("between", stats)
    rows = read_all(damaged, stats, skips=skips)
    assert [r["source_id"] for r in rows] == [m[2] for m in members]
    assert stats.counters["reader.corrupt_file"] == 1
    lost = [
        (s.reason, s.position, s.bytes)
        for s in skips.records
        if s.unit == "byte" and "skipped" not in s.reason
    ]
    assert lost == [("unreadable_bytes", boundary, 3500)]


def test_uncompressed_warc_resumes_at_the_next_record_header(shared_data: Path, tmp_path: Path) -> None:
    raw = gzip.decompress((shared_data / "warc" / DOLMA[0]).read_bytes())
    offsets = [m.start() for m in re.finditer(rb"WARC/1\.[01]\r\n", raw)]
    boundary = offsets[10]
    damaged = tmp_path / "plain.warc"
    damaged.write_bytes(raw[:boundary] + b"junk bytes\r\n" * 300 + raw[boundary:])
    stats = Stats()
    rows = read_all(damaged, stats)
    assert len(rows) == len(responses(shared_data / "warc" / DOLMA[0]))
    assert stats.counters["reader.corrupt_file"] == 1
    assert stats.counters["reader.resynced"] == 1
    assert stats.counters["reader.unreadable_bytes"] == 1


# --- hand-built records ----------------------------------------------------------------------------------


def test_hand_built_records_cover_charsets_filters_and_encodings(tmp_path: Path) -> None:
    html_type = {"Content-Type": "text/html"}
    records = [
        ("response", "<https://a.example/latin>",
         http("200 OK", {"Content-Type": "text/html; charset=ISO-8859-1"}, b"<p>caf\xe9 cr\xe8me</p>")),
        ("response", "https://a.example/meta",
         http("200 OK", html_type, b'<meta charset="windows-1251"><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>')),
        ("response", "https://a.example/broken", http("200 OK", html_type, b"<p>ok \xff\xfe bad</p>")),
        ("response", "https://a.example/missing", http("404 Not Found", html_type, b"<p>gone</p>")),
        ("response", "https://a.example/logo.png", http("200 OK", {"Content-Type": "image/png"}, b"\x89PNG")),
        ("revisit", "https://a.example/again", http("200 OK", html_type, b"")),
        ("response", "https://a.example/xhtml",
         http("200 OK", {"Content-Type": "application/xhtml+xml"}, b"<html><p>x</p></html>")),
        ("response", "https://a.example/gzipped",
         http("200 OK", {**html_type, "Content-Encoding": "gzip"}, gzip.compress(b"<p>inflated</p>"))),
    ]  # fmt: skip
    path = tmp_path / "built.warc.gz"
    path.write_bytes(b"".join(warc_record(t, u, b, i) for i, (t, u, b) in enumerate(records)))
    stats = Stats()
    rows = {r["url"]: r for r in read_all(path, stats, max_replacement_share=0.5)}
    assert set(rows) == {
        "https://a.example/latin",
        "https://a.example/meta",
        "https://a.example/broken",
        "https://a.example/xhtml",
        "https://a.example/gzipped",
    }
    assert rows["https://a.example/latin"]["source_id"] == "urn:uuid:00000000-0000-0000-0000-000000000000"
    assert "café crème" in rows["https://a.example/latin"]["html"]
    assert "Привет" in rows["https://a.example/meta"]["html"]
    assert "\ufffd" in rows["https://a.example/broken"]["html"]
    assert rows["https://a.example/gzipped"]["html"] == "<p>inflated</p>"
    assert stats.counters["reader.invalid_utf8"] == 1
    assert stats.counters["reader.documents_with_replacements"] == 1
    assert stats.counters["reader.skipped_http_status"] == 1
    assert stats.counters["reader.skipped_non_html"] == 1
    assert stats.counters["reader.skipped_record_type.revisit"] == 1
    # By default no page with replacement characters is kept.
    stats = Stats()
    assert "https://a.example/broken" not in {r["url"] for r in read_all(path, stats)}
    assert stats.counters["reader.undecodable_text"] == 1


def test_crawler_truncated_payloads_are_kept_and_counted(tmp_path: Path) -> None:
    body = http("200 OK", {"Content-Type": "text/html; charset=utf-8"}, b"<html><body><p>cut by the crawl")
    path = tmp_path / "capped.warc.gz"
    path.write_bytes(warc_record("response", "https://big.example/", body, 1, "WARC-Truncated: length\r\n"))
    stats = Stats()
    rows = read_all(path, stats)
    assert [r["html"] for r in rows] == ["<html><body><p>cut by the crawl"]
    assert stats.counters["reader.payload_truncated_by_crawler"] == 1
    assert "reader.corrupt_records" not in stats.counters


def test_batches_are_arrow_with_the_reader_schema(shared_data: Path) -> None:
    batches = list(read_warc(str(shared_data / "warc" / DOLMA[1]), batch_size=4, stats=Stats()))
    assert [b.num_rows for b in batches] == [4, 4, 4, 3]
    table = pa.Table.from_batches(batches)
    assert table.schema == schema.READER_SCHEMA
    assert table.column(schema.ID).null_count == 0


def test_batch_size_must_be_positive(shared_data: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        list(read_warc(str(shared_data / "warc" / DOLMA[1]), batch_size=0, stats=Stats()))


def test_zstd_compressed_warc_reads_like_the_gzip_one(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "warc" / DOLMA[1]
    path = tmp_path / "sample.warc.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(gzip.decompress(source.read_bytes())))
    from_zstd = [(r["source_id"], r["html"]) for r in read_all(path, Stats())]
    assert from_zstd == [(r["source_id"], r["html"]) for r in read_all(source, Stats())]
    assert len(from_zstd) == 15


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("eng,deu", "en"),
        ("zho", "zh"),
        ("spa,cat,eng", "es"),
        ("EN", "en"),
        ("xyz", None),
        ("", None),
        (None, None),
    ],
)
def test_wet_language_header_maps_to_two_letter_codes(header: str | None, lang: str | None) -> None:
    assert first_language(header) == lang


def test_ids_are_the_name_and_record_offset_whatever_the_mount(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "warc" / "whirlwind.warc.gz"
    mounts = [tmp_path / "laptop" / "crawl", tmp_path / "cluster" / "mnt" / "crawl"]
    found = []
    for mount in mounts:
        mount.mkdir(parents=True)
        shutil.copy(source, mount / "w.warc.gz")
        rows = []
        for batch in read_warc(
            str(mount / "w.warc.gz"), batch_size=100, stats=Stats(), name="crawl/w.warc.gz"
        ):
            rows.extend(batch.to_pylist())
        found.append([(r["id"], r["source"], r["source_id"]) for r in rows])
    assert found[0] == found[1]
    ids = [row_id for row_id, _, _ in found[0]]
    assert len(set(ids)) == len(ids)
    assert all(row_id.startswith("crawl/w.warc.gz:") and row_id.split(":")[-1].isdigit() for row_id in ids)
