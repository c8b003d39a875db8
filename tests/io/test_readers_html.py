"""Standalone HTML files (the WCXB pages) and the charset logic shared with the WARC reader."""

from __future__ import annotations

import codecs
import gzip
import random
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.decoding import decode_html, is_utf8, normalize_charset, sniff_meta_charset
from corpusmill.io.html_files import page_url, read_html


def wcxb_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))
    assert len(files) == 1497
    return files


class _SelfUrl(HTMLParser):
    """Reference extraction with the standard library parser: canonical link, then og:url, in <head>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.canonical: str | None = None
        self.og: str | None = None
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
        if self.in_body:
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "link" and "canonical" in values.get("rel", "").lower().split() and self.canonical is None:
            href = values.get("href", "").strip()
            if href.lower().startswith(("http://", "https://")):
                self.canonical = href
        if tag == "meta" and (values.get("property") or values.get("name") or "").lower() == "og:url":
            content = values.get("content", "").strip()
            if self.og is None and content.lower().startswith(("http://", "https://")):
                self.og = content


def reference_url(page: str) -> str | None:
    parser = _SelfUrl()
    parser.feed(page)
    return parser.canonical or parser.og


def read_one(path: Path | str, stats: Stats, **options) -> dict | None:
    batches = list(read_html(str(path), batch_size=10, stats=stats, **options))
    assert len(batches) <= 1
    if not batches:
        return None
    assert batches[0].schema == schema.READER_SCHEMA
    rows = batches[0].to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_sample_of_wcxb_pages_reads_exactly(shared_data: Path) -> None:
    sample = wcxb_files(shared_data)[::30]
    assert len(sample) >= 50
    stats = Stats()
    with_own_url = 0
    for path in sample:
        row = read_one(path, stats)
        uri = str(path)
        assert row["id"] == row["source"] == uri  # no name given: the uri names the file
        assert row["source_id"] is None
        assert row["text"] is None
        # Every WCXB page is stored as UTF-8, whatever charset it declares.
        assert row["html"] == gzip.decompress(path.read_bytes()).decode("utf-8")
        expected_url = reference_url(row["html"])
        assert row["url"] == expected_url, path.name
        with_own_url += expected_url is not None
    assert with_own_url > len(sample) // 2
    assert stats.counters["reader.documents"] == len(sample)


def test_all_wcxb_pages_load_quickly_without_errors(shared_data: Path) -> None:
    stats = Stats()
    started = time.perf_counter()
    ids = set()
    for path in wcxb_files(shared_data):
        ids.add(read_one(path, stats)["id"])
    elapsed = time.perf_counter() - started
    assert len(ids) == 1497
    assert dict(stats.counters) == {"reader.documents": 1497}
    assert elapsed < 20, f"reading the 1,497 pages took {elapsed:.1f} s"


def test_page_url_prefers_canonical_and_ignores_relative_links() -> None:
    both = (
        '<html><head><meta property="og:url" content="https://og.example/a">'
        '<link href="https://c.example/a?x=1&amp;y=2" rel="alternate canonical"></head><body></body></html>'
    )
    assert page_url(both) == "https://c.example/a?x=1&y=2"
    relative = (
        '<head><link rel=canonical href="/a"><meta name="og:url" content="https://og.example/b"></head>'
    )
    assert page_url(relative) == "https://og.example/b"
    assert (
        page_url('<head><title>x</title></head><body><link rel="canonical" href="https://late.example/">')
        is None
    )


def test_page_without_own_url_has_no_url_and_its_name_as_id(tmp_path: Path) -> None:
    path = tmp_path / "plain.htm"
    path.write_bytes(b'<html><head><meta charset="iso-8859-1"><title>caf\xe9</title></head></html>')
    stats = Stats()
    (row,) = [
        r
        for b in read_html(str(path), batch_size=10, stats=stats, name="site/plain.htm")
        for r in b.to_pylist()
    ]
    assert row["url"] is None and row["id"] == row["source"] == "site/plain.htm"
    assert "<title>café</title>" in row["html"]
    assert "reader.invalid_utf8" not in stats.counters


def test_damaged_empty_and_oversized_files_are_counted_not_raised(tmp_path: Path, shared_data: Path) -> None:
    page = wcxb_files(shared_data)[0].read_bytes()
    truncated = tmp_path / "cut.html.gz"
    truncated.write_bytes(page[: len(page) // 2])
    not_gzip = tmp_path / "fake.html.gz"
    not_gzip.write_bytes(b"this is not gzip data" * 10)
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"  \n")
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"x" * 5000 + b"</p>")
    stats = Stats()
    skips = SkipLog("pages", stats)
    assert read_one(truncated, stats, skips=skips) is None
    assert read_one(not_gzip, stats, skips=skips) is None
    assert read_one(empty, stats, skips=skips) is None
    assert read_one(big, stats, max_document_bytes=1000, skips=skips) is None
    assert stats.counters["reader.corrupt_file"] == 2
    assert stats.counters["reader.empty_document"] == 1
    assert stats.counters["reader.too_large"] == 1
    assert [(s.unit, s.position, s.reason) for s in skips.records] == [
        ("file", None, "corrupt_file"),
        ("file", None, "corrupt_file"),
        ("file", None, "empty_document"),
        ("file", None, "too_large"),
    ]
    assert read_one(big, stats)["html"].startswith("<p>xxx")


def test_undecodable_pages_are_skipped_unless_the_share_allows(tmp_path: Path) -> None:
    path = tmp_path / "binary.html"
    path.write_bytes(b"<p>ok</p>" + bytes(range(0x80, 0x100)) * 4)  # declares nothing; mostly not UTF-8
    stats = Stats()
    skips = SkipLog("binary.html", stats)
    assert read_one(path, stats, skips=skips) is None
    assert [(s.reason, s.unit) for s in skips.records] == [("undecodable_text", "file")]
    assert read_one(path, Stats(), max_replacement_share=1.0)["html"].startswith("<p>ok</p>\ufffd")
    genuine = tmp_path / "genuine.html"
    genuine.write_bytes("<p>a real \ufffd in UTF-8</p>".encode())
    stats = Stats()
    assert read_one(genuine, stats)["html"] == "<p>a real \ufffd in UTF-8</p>"
    assert "reader.undecodable_text" not in stats.counters


# --- charset decisions ---------------------------------------------------------------------------------


def test_valid_utf8_wins_over_a_declared_legacy_charset() -> None:
    data = '<meta charset="iso-8859-1"><p>naïve – ok</p>'.encode()
    decoded = decode_html(data, "ISO-8859-1")
    assert decoded.text == data.decode("utf-8") and not decoded.replaced


def test_declared_charsets_in_order_http_then_meta() -> None:
    body = '<meta charset="koi8-r"><p>Привет</p>'.encode("cp1251")
    assert decode_html(body, "windows-1251").text.endswith("Привет</p>")
    assert decode_html(body).text.endswith("Привет</p>".encode("cp1251").decode("koi8-r"))


def test_browser_label_mapping_and_unusable_labels() -> None:
    assert normalize_charset("ISO-8859-1") == "cp1252"
    assert normalize_charset("us-ascii") == "cp1252"
    assert normalize_charset("GB2312") == "gb18030"
    assert normalize_charset("Shift_JIS") == "cp932"
    assert normalize_charset("no-such-charset") is None
    assert normalize_charset("base64") is None
    assert (
        sniff_meta_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=UTF-16">') == "utf-8"
    )
    # \x93 \x94 are curly quotes in windows-1252 but control characters in true ISO-8859-1.
    assert decode_html(b"\x93quoted\x94", "iso-8859-1").text == "\u201cquoted\u201d"
    assert decode_html(b"caf\xe9", "x-unknown").text == "caf\ufffd"


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-32"])
def test_a_utf16_declaration_does_not_destroy_a_valid_utf8_page(label: str) -> None:
    data = "<html><p>naïve café – 漢字</p></html>".encode()
    decoded = decode_html(data, label)
    assert decoded.text == data.decode("utf-8")
    assert decoded.encoding == "utf-8" and decoded.replacements == 0


def test_a_real_utf16_page_without_byte_order_mark_follows_its_declaration() -> None:
    page = "<html><p>naïve café</p></html>"
    assert decode_html(page.encode("utf-16-le"), "utf-16le").text == page
    assert decode_html(page.encode("utf-16-be"), "utf-16be").text == page


def test_replacements_count_only_what_decoding_put_in() -> None:
    assert decode_html("real \ufffd kept".encode()).replacements == 0
    broken = decode_html(b"\xef\xbf\xbd bad \xff\xfe and \xc3")
    assert broken.replacements == 3 and broken.chars == len(broken.text)
    legacy = decode_html(b"caf\xe9 \x81", "windows-1252")  # 0x81 is a hole in windows-1252
    assert legacy.text == "café \ufffd" and legacy.replacements == 1 and legacy.encoding == "cp1252"


def test_byte_order_mark_overrides_everything() -> None:
    data = codecs.BOM_UTF16_LE + "<p>hé</p>".encode("utf-16-le")
    decoded = decode_html(data, "iso-8859-1")
    assert decoded.text == "<p>hé</p>" and decoded.encoding == "utf-16-le"
    assert decode_html(codecs.BOM_UTF8 + b"<p>x</p>").text == "<p>x</p>"


@pytest.mark.parametrize("data", [b"\xfd\xfe\xff", b"<p>\xc3</p>", b"\x80" * 10])
def test_undecodable_bytes_are_replaced_never_fatal(data: bytes) -> None:
    decoded = decode_html(data)
    assert decoded.replaced and decoded.encoding == "utf-8" and "\ufffd" in decoded.text


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_utf8_check_agrees_with_a_strict_decode() -> None:
    edge_cases = [
        b"",
        b"plain ascii",
        "café – 漢字 😀".encode(),
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xc0\x80",  # overlong NUL
        b"\xe0\x80\xaf",  # overlong slash
        b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the last code point
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\xe2\x82",  # cut short
        b"\xf8\x88\x80\x80\x80",  # five-byte form
        b"ok \x80 stray continuation",
    ]
    rng = random.Random(7)
    lead = [0xC2, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF]
    fuzz = [
        bytes(rng.choice([*lead, rng.randrange(256)]) for _ in range(rng.randint(1, 6))) for _ in range(5000)
    ]
    for data in edge_cases + fuzz:
        assert is_utf8(data) == _decodes(data), data
    assert 50 < sum(map(is_utf8, fuzz)) < 4950  # the fuzz covers both answers
