"""A corpus damaged the way real crawls are, built from real pages, with the truth of every record written down.

`write_damaged_corpus(directory, pages, seed)` writes WARC (gzipped and plain), WET, HTML files, JSONL
(plain, gzip, zstd, bz2, cut short or not) and Parquet inputs that mix well-formed records with damaged ones:
invalid JSON, a non-object line, a line without text, an integer text, a file cut inside its compressed
stream, garbage instead of a gzip stream, an empty file, a Parquet file without its text column or with a
broken footer, an HTML page of undecodable bytes, a WARC record with a non-numeric Content-Length or a garbled
version line, a plain WARC record whose Content-Length runs far past its data, a WET record whose gzip member is
cut in the middle of the file, a WET record that is not UTF-8. The returned `Truth` names
every well-formed record by the id the pipeline gives it (`<file>:<place>`, or the WARC-Record-ID for WARC
records, whose byte offsets are the reader's business) and every damaged one by its file, so a test can check
that each well-formed record is kept or rejected with a reason and each damaged one is listed as skipped.
"""

from __future__ import annotations

import bz2
import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard


@dataclass
class Truth:
    """What the corpus holds: ids of well-formed records, and the files holding damaged records."""

    ids: set[str] = field(default_factory=set)  # `<file>:<place>` or a file name (HTML)
    record_ids: set[str] = field(default_factory=set)  # WARC-Record-IDs of well-formed responses
    damaged_record_ids: set[str] = field(default_factory=set)  # WARC-Record-IDs that must never be kept
    damaged_ids: set[str] = field(default_factory=set)  # `<file>:<place>` of records that must never be kept
    damaged_files: set[str] = field(default_factory=set)  # files with damage the skipped table must name
    rejected: dict[str, str] = field(default_factory=dict)  # id -> the drop reason a stage must give it


def _text(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(40, 90))) + "."


def _jsonl_lines(rows: list[object]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def _write_jsonl(directory: Path, truth: Truth, rng: random.Random, words: list[str]) -> None:
    good = [{"id": n, "text": _text(rng, words)} for n in range(30)]
    (directory / "good.jsonl").write_bytes(_jsonl_lines(good))
    truth.ids |= {f"good.jsonl:{n}" for n in range(1, 31)}

    mixed: list[object] = []
    for n in range(1, 41):
        kind = n % 8
        if kind == 1:
            mixed.append(b'{"id": "broken", "text": ')  # invalid JSON
        elif kind == 3:
            mixed.append([1, 2, 3])  # a JSON array, not an object
        elif kind == 5:
            mixed.append({"id": n, "url": "https://x.example/no-text"})
        elif kind == 7:
            mixed.append({"id": n, "text": 12345})  # not a string
        else:
            mixed.append({"id": n, "text": _text(rng, words)})
            truth.ids.add(f"mixed.jsonl:{n}")
            continue
        truth.damaged_ids.add(f"mixed.jsonl:{n}")
    (directory / "mixed.jsonl").write_bytes(_jsonl_lines(mixed))
    truth.damaged_files.add("mixed.jsonl")

    long_rows = [{"id": n, "text": _text(rng, words)} for n in range(400)]
    data = _jsonl_lines(long_rows)
    for name, compressed in (
        ("cut.jsonl.gz", gzip.compress(data)),
        ("cut.jsonl.zst", zstandard.ZstdCompressor().compress(data)),
        ("cut.jsonl.bz2", bz2.compress(data)),
    ):
        (directory / name).write_bytes(compressed[: int(len(compressed) * 0.5)])
        truth.damaged_files.add(name)  # lines before the cut are kept; which ones is the reader's test
    quarter = data[: data.rfind(b"\n", 0, len(data) // 4) + 1]  # whole lines only
    (directory / "whole.jsonl.gz").write_bytes(gzip.compress(quarter))
    truth.ids |= {f"whole.jsonl.gz:{n}" for n in range(1, quarter.count(b"\n") + 1)}
    (directory / "garbage.jsonl.gz").write_bytes(b"this is not a gzip stream at all\n" * 20)
    truth.damaged_files.add("garbage.jsonl.gz")
    (directory / "empty.jsonl").write_bytes(b"")


def _write_parquet(directory: Path, truth: Truth, rng: random.Random, words: list[str]) -> None:
    table = pa.table({"id": [f"p{n}" for n in range(25)], "text": [_text(rng, words) for _ in range(25)]})
    pq.write_table(table, directory / "good.parquet", row_group_size=10)
    truth.ids |= {f"good.parquet:{n}" for n in range(25)}
    pq.write_table(pa.table({"body": ["no text column here"]}), directory / "notext.parquet")
    truth.damaged_files.add("notext.parquet")
    whole = (directory / "good.parquet").read_bytes()
    (directory / "broken.parquet").write_bytes(whole[: len(whole) - 40])  # the footer is cut
    truth.damaged_files.add("broken.parquet")


def _write_html(directory: Path, truth: Truth, pages: list[bytes]) -> None:
    site = directory / "site"
    site.mkdir()
    for n, page in enumerate(pages[:6]):
        (site / f"page-{n}.html").write_bytes(page)
        truth.ids.add(f"site/page-{n}.html")
    (site / "empty.html").write_bytes(b"   \n")
    truth.damaged_files.add("site/empty.html")
    # Nested past what the HTML parser can hold: dropped by `extract` as `extract_truncated`, never cut silently.
    deep = b"<html><body><p>Top of a deep page.</p>" + b"<div>" * 5000 + b"<p>Bottom.</p>" + b"</div>" * 5000
    (site / "deep.html").write_bytes(deep + b"</body></html>")
    truth.ids.add("site/deep.html")
    truth.rejected["site/deep.html"] = "extract_truncated"


def _record(warc_type: str, number: int, block: bytes, length: str | None = None) -> bytes:
    head = (
        f"WARC/1.0\r\nWARC-Type: {warc_type}\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{number:012d}>\r\n"
        f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: https://page{number}.example/\r\n"
        f"Content-Type: application/http; msgtype={'response' if warc_type == 'response' else 'request'}\r\n"
        f"Content-Length: {len(block) if length is None else length}\r\n\r\n"
    ).encode()
    return head + block + b"\r\n\r\n"


def _http(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body


def _record_id(number: int) -> str:
    return f"urn:uuid:00000000-0000-0000-0000-{number:012d}"


def _write_warc(directory: Path, truth: Truth, pages: list[bytes]) -> None:
    members = []
    for n, page in enumerate(pages[6:14], start=100):
        members.append(gzip.compress(_record("request", n + 1000, b"GET / HTTP/1.1\r\n\r\n")))
        if n == 103:
            members.append(gzip.compress(_record("response", n, _http(page), length="abc")))
            truth.damaged_record_ids.add(_record_id(n))
        elif n == 105:  # declares UTF-16 but is valid UTF-8: the body wins, the page is read as it is
            lying = _http(page).replace(b"charset=utf-8", b"charset=utf-16")
            members.append(gzip.compress(_record("response", n, lying)))
            truth.record_ids.add(_record_id(n))
        else:
            members.append(gzip.compress(_record("response", n, _http(page))))
            truth.record_ids.add(_record_id(n))
    (directory / "crawl.warc.gz").write_bytes(b"".join(members))

    plain = []
    for n, page in enumerate(pages[14:20], start=200):
        if n == 202:
            plain.append(_record("response", n, _http(page)).replace(b"WARC/1.0", b"WRAC/1.0 garbled", 1))
            truth.damaged_record_ids.add(_record_id(n))
        elif n == 205:  # the last record claims 200 kB more than the file holds
            plain.append(_record("response", n, _http(page), length=str(len(_http(page)) + 200_000)))
            truth.damaged_record_ids.add(_record_id(n))
        else:
            plain.append(_record("response", n, _http(page)))
            truth.record_ids.add(_record_id(n))
    (directory / "plain.warc").write_bytes(b"".join(plain))
    truth.damaged_files |= {"crawl.warc.gz", "plain.warc"}


def _conversion(number: int, text: bytes) -> bytes:
    head = (
        f"WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{number:012d}>\r\n"
        f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: https://text{number}.example/\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(text)}\r\n\r\n"
    ).encode()
    return head + text + b"\r\n\r\n"


def _write_wet(directory: Path, truth: Truth, rng: random.Random, words: list[str]) -> None:
    members = [gzip.compress(_conversion(n, _text(rng, words).encode())) for n in range(300, 310)]
    members[4] = members[4][: len(members[4]) // 2]  # one gzip member cut in the middle of the file
    truth.damaged_record_ids.add(_record_id(304))
    truth.record_ids |= {_record_id(n) for n in range(300, 310) if n != 304}
    members.append(gzip.compress(_conversion(310, b"caf\xe9 \xff\xfe" * 20)))  # not UTF-8: undecodable
    truth.damaged_record_ids.add(_record_id(310))
    (directory / "text.warc.wet.gz").write_bytes(b"".join(members))
    truth.damaged_files.add("text.warc.wet.gz")


def write_damaged_corpus(directory: Path, pages: list[bytes], seed: int = 0) -> Truth:
    """Write the damaged corpus into `directory` from at least 20 real HTML pages; return its truth."""
    if len(pages) < 20:
        raise ValueError(f"need at least 20 pages, got {len(pages)}")
    rng = random.Random(seed)
    words = [w for page in pages[:5] for w in page.decode("utf-8", "replace").split() if w.isalpha()][:2000]
    directory.mkdir(parents=True, exist_ok=True)
    truth = Truth()
    _write_jsonl(directory, truth, rng, words or ["word"])
    _write_parquet(directory, truth, rng, words or ["word"])
    _write_html(directory, truth, pages)
    _write_warc(directory, truth, pages)
    _write_wet(directory, truth, rng, words or ["word"])
    return truth
