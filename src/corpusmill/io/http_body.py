"""Undoing HTTP transfer and content encodings of a WARC response payload.

The WARC reader reads payloads raw and decodes them here rather than letting the WARC library do it: only a
raw read tells whether a record was cut short (fewer bytes than its Content-Length), and decoding in our own
code lets one bad payload be counted and skipped instead of breaking the whole file. Every decompression is
bounded by the document size limit, so a small compressed bomb cannot exhaust memory. Payloads whose headers
claim an encoding that the bytes visibly do not have (common when a crawler stored the decoded body but kept
the headers) are passed through unchanged.
"""

from __future__ import annotations

import io
import re
import zlib

_CHUNK_SIZE_LINE = re.compile(rb"[0-9a-fA-F]+[ \t]*(;[^\r\n]*)?\r?\n")


class PayloadError(Exception):
    """A payload that cannot be turned into a document; `reason` is the stats counter suffix."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def decode_payload(
    body: bytes, transfer_encoding: str | None, content_encoding: str | None, limit: int
) -> bytes:
    """The payload as the server meant it, before transfer and content encodings; at most `limit` bytes."""
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        body = dechunk(body)
    if content_encoding:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        for coding in reversed(codings):
            body = _undo_content_coding(body, coding, limit)
    if len(body) > limit:
        raise PayloadError("too_large", f"decoded payload of {len(body)} bytes exceeds {limit}")
    return body


def dechunk(body: bytes) -> bytes:
    """Join the chunks of a chunked-transfer body; a body that does not start like one is returned as is."""
    if not _CHUNK_SIZE_LINE.match(body):
        return body
    parts: list[bytes] = []
    pos = 0
    end = len(body)
    while pos < end:
        match = _CHUNK_SIZE_LINE.match(body, pos)
        if match is None:
            raise PayloadError("bad_http_body", f"malformed chunk size line at payload byte {pos}")
        size = int(match.group(0).split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        start = match.end()
        parts.append(body[start : start + size])
        pos = start + size
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1
    return b"".join(parts)


def _undo_content_coding(body: bytes, coding: str, limit: int) -> bytes:
    if coding in ("identity", ""):
        return body
    if coding in ("gzip", "x-gzip"):
        if not body.startswith(b"\x1f\x8b"):
            return body
        return _inflate(body, zlib.MAX_WBITS | 16, limit, coding)
    if coding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit, coding)
        except PayloadError as exc:
            if exc.reason == "too_large":
                raise
            return _inflate(body, -zlib.MAX_WBITS, limit, coding)
    if coding == "br":
        return _unbrotli(body, limit)
    if coding == "zstd":
        return _unzstd(body, limit)
    raise PayloadError("unsupported_content_encoding", f"content encoding {coding!r} is not supported")


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    try:
        out = zlib.decompressobj(wbits).decompress(body, limit + 1)
    except zlib.error as exc:
        raise PayloadError("bad_http_body", f"{coding} payload does not decompress: {exc}") from exc
    if len(out) > limit:
        raise PayloadError("too_large", f"{coding} payload expands beyond {limit} bytes")
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    import brotli

    try:
        out = brotli.Decompressor().process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise PayloadError("bad_http_body", f"br payload does not decompress: {exc}") from exc
    if len(out) > limit:
        raise PayloadError("too_large", f"br payload expands beyond {limit} bytes")
    return out


def _unzstd(body: bytes, limit: int) -> bytes:
    import zstandard

    try:
        out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read(limit + 1)
    except zstandard.ZstdError as exc:
        raise PayloadError("bad_http_body", f"zstd payload does not decompress: {exc}") from exc
    if len(out) > limit:
        raise PayloadError("too_large", f"zstd payload expands beyond {limit} bytes")
    return out
