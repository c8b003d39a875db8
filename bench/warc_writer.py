"""A minimal WARC/1.0 writer: HTML pages as gzipped `response` records, one gzip member per record.

Neither fastwarc nor the project needs more than this to make benchmark input, so the bench writes the
format itself rather than adding a dependency: a `warcinfo` record first, then one `response` record per
page whose block is an HTTP/1.1 200 response with `Content-Type: text/html; charset=utf-8`. Records carry
`WARC-Identified-Payload-Type` (datatrove's reader filters on it) and SHA-1 block and payload digests as
crawlers write them. gzip members are written with mtime 0, so the same pages give the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import BinaryIO

WARC_DATE = "2024-05-20T00:00:00Z"


def _digest(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f"Content-Length: {len(block)}\r\n\r\n"
    return gzip.compress(head.encode("utf-8") + block + b"\r\n\r\n", compresslevel=6, mtime=0)


def warcinfo_record(record_id: str, filename: str) -> bytes:
    """The leading `warcinfo` record that names the file and the software that wrote it."""
    block = b"software: corpusmill bench corpus builder\r\nformat: WARC File Format 1.0\r\n"
    headers = [
        ("WARC-Type", "warcinfo"),
        ("WARC-Record-ID", f"<{record_id}>"),
        ("WARC-Date", WARC_DATE),
        ("WARC-Filename", filename),
        ("Content-Type", "application/warc-fields"),
    ]
    return _record(headers, block)


def response_record(record_id: str, url: str, html: bytes) -> bytes:
    """One HTML page as a WARC `response` record (HTTP 200, UTF-8 HTML payload)."""
    http_head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(html)}\r\n\r\n"
    ).encode("ascii")
    block = http_head + html
    headers = [
        ("WARC-Type", "response"),
        ("WARC-Record-ID", f"<{record_id}>"),
        ("WARC-Date", WARC_DATE),
        ("WARC-Target-URI", url),
        ("WARC-Identified-Payload-Type", "text/html"),
        ("WARC-Block-Digest", _digest(block)),
        ("WARC-Payload-Digest", _digest(html)),
        ("Content-Type", "application/http; msgtype=response"),
    ]
    return _record(headers, block)


class WarcFileWriter:
    """Appends records to one `.warc.gz` stream (the caller owns the file and its atomic rename)."""

    def __init__(self, handle: BinaryIO, filename: str, info_id: str) -> None:
        self.handle = handle
        self.records = 0
        self.payload_bytes = 0
        handle.write(warcinfo_record(info_id, filename))

    def add(self, record_id: str, url: str, html: bytes) -> None:
        """Write one page."""
        self.handle.write(response_record(record_id, url, html))
        self.records += 1
        self.payload_bytes += len(html)
