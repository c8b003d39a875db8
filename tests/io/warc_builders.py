"""Hand-built WARC records for the reader tests: whole ones, and ones damaged in exactly one way."""

from __future__ import annotations

import gzip


def raw_record(
    warc_type: str,
    uri: str,
    block: bytes,
    number: int,
    extra: str = "",
    *,
    length: int | str | None = None,
    version: str = "WARC/1.0",
) -> bytes:
    """One uncompressed record; `length` overrides the Content-Length, `version` the first line."""
    length = len(block) if length is None else length
    head = (
        f"{version}\r\nWARC-Type: {warc_type}\r\n{extra}"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{number:012d}>\r\n"
        f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: {uri}\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    return head + block + b"\r\n\r\n"


def warc_record(warc_type: str, uri: str, block: bytes, number: int, extra: str = "") -> bytes:
    """One record in a gzip member of its own, as crawlers write them."""
    return gzip.compress(raw_record(warc_type, uri, block, number, extra))


def http(status: str, headers: dict[str, str], body: bytes) -> bytes:
    """An HTTP response: status line, headers and body."""
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def page_block(number: int, html: bytes | None = None) -> bytes:
    """The block (HTTP response) of `page(number)`: `html`, or a one-line page by default."""
    return http("200 OK", {"Content-Type": "text/html"}, html or f"<p>page {number}</p>".encode())


def page(number: int, html: bytes | None = None, **damage: object) -> bytes:
    """An uncompressed response record of a small HTML page at `https://a.example/<number>`."""
    block = page_block(number, html)
    return raw_record("response", f"https://a.example/{number}", block, number, **damage)  # type: ignore[arg-type]
