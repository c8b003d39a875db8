"""WARC damage told apart by reason: each bad record skipped with its own reason and offset, none kept."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator
from warc_builders import http, page, page_block, raw_record

from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io import warc_recovery as recovery
from corpusmill.io.warc import read_warc, read_wet

HTML = {"Content-Type": "text/html"}


def write(tmp_path: Path, records: list[bytes], compressed: bool) -> tuple[Path, list[int]]:
    """The records as a plain or gzipped (member per record) WARC file, and each record's offset."""
    parts = [gzip.compress(r) for r in records] if compressed else records
    offsets = [sum(len(p) for p in parts[:i]) for i in range(len(parts))]
    path = tmp_path / ("built.warc.gz" if compressed else "built.warc")
    path.write_bytes(b"".join(parts))
    return path, offsets


def read(path: Path, **options) -> tuple[list[str], Stats, SkipLog]:
    stats = Stats()
    skips = SkipLog(path.name, stats)
    rows = [
        r
        for b in read_warc(str(path), batch_size=10, stats=stats, skips=skips, **options)
        for r in b.to_pylist()
    ]
    return [r["url"] for r in rows], stats, skips


def record_skips(skips: SkipLog) -> list[tuple[str, int | None]]:
    return [(s.reason, s.position) for s in skips.records if s.unit == "byte"]


def urls(*numbers: int) -> list[str]:
    return [f"https://a.example/{n}" for n in numbers]


@pytest.mark.parametrize("compressed", [False, True])
def test_a_garbled_version_line_is_a_bad_header_and_reading_goes_on(tmp_path: Path, compressed: bool) -> None:
    path, offsets = write(tmp_path, [page(0), page(1, version="WARX/1.0"), page(2)], compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2)
    assert record_skips(skips) == [("bad_warc_header", offsets[1])]
    assert skips.records[0].bytes == offsets[2] - offsets[1]
    assert "WARX/1.0" in skips.records[0].detail
    assert stats.counters["reader.bad_warc_header"] == 1
    assert stats.counters["reader.corrupt_file"] == 1
    assert stats.counters["reader.resynced"] == 1


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("length", ["abc", "-5", "12 bytes"])
def test_a_content_length_that_is_no_number_is_its_own_reason(
    tmp_path: Path, compressed: bool, length: str
) -> None:
    path, offsets = write(tmp_path, [page(0), page(1, length=length), page(2)], compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2)
    assert record_skips(skips) == [("bad_content_length", offsets[1])]
    assert repr(length) in skips.records[0].detail
    assert "reader.skipped_http_status" not in stats.counters


def test_a_missing_content_length_is_a_bad_content_length(tmp_path: Path) -> None:
    record = page(1).replace(b"Content-Length: ", b"X-Length: ")
    path, offsets = write(tmp_path, [page(0), record, page(2)], compressed=False)
    kept, _, skips = read(path)
    assert kept == urls(0, 2)
    assert record_skips(skips) == [("bad_content_length", offsets[1])]


@pytest.mark.parametrize("compressed", [False, True])
def test_a_content_length_past_the_data_does_not_swallow_the_next_records(
    tmp_path: Path, compressed: bool
) -> None:
    # Long enough that the wrong length ends inside the records after it, not at the end of the file.
    pages = [page(0), page(1, length=700), page(2), page(3), page(4), page(5)]
    path, offsets = write(tmp_path, pages, compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2, 3, 4, 5)
    assert record_skips(skips) == [("truncated_record", offsets[1])]
    assert "runs into the next record" in skips.records[0].detail
    assert stats.counters["reader.truncated_record"] == 1
    assert stats.counters["reader.documents"] == 5


# More CRLF line ends than the search for a swallowed header looks at one by one before it searches as a whole.
CRLF_PAGE = b"<html>\r\n" + b"<p>a line of the page</p>\r\n" * (recovery._PROBES + 50) + b"</html>"


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("html", [None, CRLF_PAGE], ids=["short page", "page of CRLF lines"])
def test_a_record_swallowed_after_a_page_of_crlf_lines_is_found_too(
    tmp_path: Path, compressed: bool, html: bytes | None
) -> None:
    length = len(page_block(1, html)) + 700
    pages = [page(0), page(1, html, length=length), page(2), page(3), page(4), page(5)]
    path, offsets = write(tmp_path, pages, compressed)
    kept, _, skips = read(path)
    assert kept == urls(0, 2, 3, 4, 5)
    assert record_skips(skips) == [("truncated_record", offsets[1])]
    payload = html or b"<p>page 1</p>"  # what follows the HTTP headers, up to the swallowed record
    assert f"{len(payload)} bytes into the payload" in skips.records[0].detail


def blocks_of(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [r.reader.read() for r in ArchiveIterator(handle, parse_http=False)]


def test_the_search_for_a_swallowed_header_finds_what_a_plain_search_finds(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swallowed = page_block(1, CRLF_PAGE) + b"\r\n\r\n" + page(2)
    blocks = [
        *blocks_of(shared_data / "warc" / "whirlwind.warc.gz"),
        *blocks_of(shared_data / "warc" / "dolma-sample-0000.warc.gz"),
        swallowed,
        swallowed.replace(b"\r\n\r\nWARC/1.0\r\n", b"\r\n\r\nWARC/1.0 \r\n"),
        b"\r" * 1000 + b"\r\n\r\nWARC/1.1\n",
        b"\r\n\r\nWARC/1.",
        b"",
    ]
    expected = [block.find(b"\r\n\r\nWARC/1.") for block in blocks]
    assert expected[-5] == len(page_block(1, CRLF_PAGE)) and max(expected[:-5]) == -1
    for probes in (recovery._PROBES, 3, 0):  # the byte-by-byte probe, both, and the whole search alone
        monkeypatch.setattr(recovery, "_PROBES", probes)
        assert [recovery._find_record_start(block) for block in blocks] == expected
        assert recovery.embedded_record(swallowed) == expected[-5]
        assert recovery.embedded_record(blocks[-4]) is None  # no record header there: not a swallowed record


def test_a_skipped_record_that_runs_past_its_data_is_truncated_too(tmp_path: Path) -> None:
    request = raw_record("request", "https://a.example/r", b"GET / HTTP/1.1\r\n\r\n", 9, length=400)
    path, offsets = write(tmp_path, [page(0), request, page(2), page(3), page(4)], compressed=False)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2, 3, 4)
    assert record_skips(skips) == [("truncated_record", offsets[1])]
    assert "reader.skipped_record_type.request" not in stats.counters


@pytest.mark.parametrize("compressed", [False, True])
def test_a_content_length_past_the_end_of_the_file_is_truncated(tmp_path: Path, compressed: bool) -> None:
    path, offsets = write(tmp_path, [page(0), page(1, length=5000)], compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0)
    assert record_skips(skips) == [("truncated_record", offsets[1])]
    assert "cut short" in skips.records[0].detail
    assert "reader.resynced" not in stats.counters


# A page with blank lines (CRLF, as HTTP writes them), so a Content-Length cut can end right at one.
LONG_PAGE = (
    b"<html>\r\n<p>first part</p>\r\n\r\n<p>second part, the one a short length cuts off</p>\r\n</html>"
)
LONG_BLOCK = len(page_block(1, LONG_PAGE))
CUTS = {
    "inside the page": LONG_BLOCK - 20,
    "at a blank line of the page": len(page_block(1, LONG_PAGE.split(b"\r\n\r\n")[0])),
    "at the end of the HTTP headers": len(page_block(1, b"x")) - 5,
    "inside the HTTP headers": 5,
}


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("cut", CUTS)
def test_a_content_length_short_of_the_block_loses_only_that_record(
    tmp_path: Path, compressed: bool, cut: str
) -> None:
    length = CUTS[cut]
    records = [page(0), page(1, LONG_PAGE, length=length), page(2), page(3)]
    path, offsets = write(tmp_path, records, compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2, 3)  # the page cut short is not kept; the records around it are
    assert record_skips(skips) == [("bad_content_length", offsets[1])]  # one row, at the record's offset
    assert skips.records[0].detail.startswith(
        f"Content-Length {length} but the block holds {LONG_BLOCK} bytes"
    )
    assert skips.records[0].bytes == offsets[2] - offsets[1]  # its tail included, not lost a second time
    assert "reader.unreadable_bytes" not in stats.counters and "reader.empty_document" not in stats.counters
    assert stats.counters["reader.corrupt_file"] == 1 and stats.counters["reader.resynced"] == 1
    assert stats.counters["reader.records"] == stats.counters["reader.documents"] + len(record_skips(skips))


@pytest.mark.parametrize("compressed", [False, True])
def test_a_short_content_length_on_the_last_record_is_caught_at_the_end_of_the_file(
    tmp_path: Path, compressed: bool
) -> None:
    path, offsets = write(tmp_path, [page(0), page(1), page(2, LONG_PAGE, length=60)], compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 1)
    assert record_skips(skips) == [("bad_content_length", offsets[2])]
    assert skips.records[0].bytes == path.stat().st_size - offsets[2]
    assert "reader.resynced" not in stats.counters


@pytest.mark.parametrize("compressed", [False, True])
def test_a_skipped_record_with_a_short_content_length_has_one_row_for_its_damage(
    tmp_path: Path, compressed: bool
) -> None:
    request = raw_record(
        "request", "https://a.example/r", b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", 9, length=10
    )
    path, offsets = write(tmp_path, [page(0), request, page(2)], compressed)
    kept, stats, skips = read(path)
    assert kept == urls(0, 2)
    assert record_skips(skips) == [("bad_content_length", offsets[1])]
    assert "reader.skipped_record_type.request" not in stats.counters


def test_a_short_content_length_in_a_wet_file_is_caught_too(tmp_path: Path) -> None:
    text = b"first line\r\n\r\nsecond line, cut off by the short length"
    records = [
        raw_record("conversion", "https://a.example/0", b"plain text", 0),
        raw_record("conversion", "https://a.example/1", text, 1, length=10),
        raw_record("conversion", "https://a.example/2", b"more text", 2),
    ]
    path, offsets = write(tmp_path, records, compressed=True)
    stats = Stats()
    skips = SkipLog("wet", stats)
    rows = [r for b in read_wet(str(path), batch_size=10, stats=stats, skips=skips) for r in b.to_pylist()]
    assert [r["text"] for r in rows] == ["plain text", "more text"]
    assert record_skips(skips) == [("bad_content_length", offsets[1])]


@pytest.mark.parametrize(
    "name", ["dolma-sample-0000.warc.gz", "dolma-sample-0001.warc.gz", "whirlwind.warc.gz"]
)
def test_whole_real_warcs_read_the_same_gzipped_and_plain_with_no_damage(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    source = shared_data / "warc" / name
    plain = tmp_path / name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    views = []
    for path in (source, plain):
        stats = Stats()
        skips = SkipLog(path.name, stats)
        rows = [
            r for b in read_warc(str(path), batch_size=10, stats=stats, skips=skips) for r in b.to_pylist()
        ]
        assert "reader.corrupt_file" not in stats.counters
        assert stats.counters["reader.records"] == len(rows) + len(record_skips(skips))
        views.append([(r["source_id"], r["url"], r["html"]) for r in rows])
    assert views[0] == views[1] and views[0]


def test_a_page_that_quotes_a_warc_record_is_kept(tmp_path: Path) -> None:
    quoted = b"<pre>\r\n\r\nWARC/1.0\r\nWARC-Type: response\r\nContent-Length: 3\r\n\r\nabc</pre>"
    record = raw_record("response", "https://a.example/1", http("200 OK", HTML, quoted), 1)
    for compressed in (False, True):
        path, _ = write(tmp_path, [page(0), record, page(2)], compressed)
        kept, stats, skips = read(path)
        assert kept == urls(0, 1, 2)
        assert len(skips) == 0 and "reader.corrupt_file" not in stats.counters


def test_http_status_size_and_header_problems_each_have_a_reason(tmp_path: Path) -> None:
    records = [
        page(0),
        raw_record("response", "https://a.example/1", http("404 Not Found", HTML, b"<p>gone</p>"), 1),
        raw_record("response", "https://a.example/2", http("abc", HTML, b"<p>?</p>"), 2),
        raw_record("response", "https://a.example/3", http("200 OK", HTML, b"<p>" + b"x" * 500 + b"</p>"), 3),
        raw_record(
            "response", "https://a.example/4", http("200 OK", {"Content-Type": "image/png"}, b"png"), 4
        ),
        raw_record("response", "https://a.example/5", http("200 OK", HTML, b"   "), 5),
        page(6).replace(b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000006>\r\n", b""),
    ]
    path, offsets = write(tmp_path, records, compressed=True)
    kept, stats, skips = read(path, max_document_bytes=200)
    assert kept == urls(0)
    assert record_skips(skips) == [
        ("skipped_http_status", offsets[1]),
        ("bad_http_header", offsets[2]),
        ("too_large", offsets[3]),
        ("skipped_non_html", offsets[4]),
        ("empty_document", offsets[5]),
        ("bad_warc_header", offsets[6]),
    ]
    assert skips.records[0].detail == "HTTP 404"
    assert skips.records[0].bytes == len(http("404 Not Found", HTML, b"<p>gone</p>"))
    assert stats.counters["reader.records"] == stats.counters["reader.documents"] + len(record_skips(skips))


def test_a_utf16_header_on_a_utf8_page_keeps_the_page(tmp_path: Path) -> None:
    body = "<html><p>naïve café – 漢字</p></html>".encode()
    headers = {"Content-Type": "text/html; charset=utf-16"}
    record = raw_record("response", "https://a.example/1", http("200 OK", headers, body), 1)
    path, _ = write(tmp_path, [record], compressed=True)
    stats = Stats()
    rows = [r for b in read_warc(str(path), batch_size=10, stats=stats) for r in b.to_pylist()]
    assert [r["html"] for r in rows] == [body.decode("utf-8")]
    assert (
        "reader.undecodable_text" not in stats.counters
        and "reader.invalid_charset_bytes" not in stats.counters
    )


def test_wet_text_that_is_not_utf8_is_undecodable_by_default(tmp_path: Path) -> None:
    records = [
        raw_record("conversion", "https://a.example/1", b"plain text", 1),
        raw_record("conversion", "https://a.example/2", b"caf\xe9 au lait", 2),
    ]
    path, offsets = write(tmp_path, records, compressed=True)
    for share, expected in ((0.0, ["plain text"]), (0.1, ["plain text", "caf\ufffd au lait"])):
        stats = Stats()
        skips = SkipLog("wet", stats)
        rows = [r for b in read_wet(str(path), batch_size=10, stats=stats, skips=skips, max_replacement_share=share)
                for r in b.to_pylist()]  # fmt: skip
        assert [r["text"] for r in rows] == expected
        assert record_skips(skips) == ([("undecodable_text", offsets[1])] if share == 0 else [])
