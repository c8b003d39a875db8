"""WARC and WET files as document batches, surviving the damage real crawl files have.

Records are read with fastwarc from a file object opened through fsspec, so any filesystem works. Payloads
are read raw and decoded in `http_body`, which is what lets a record cut short be told apart from a whole
one. Damage never ends the run: a record that is cut short or malformed is counted and skipped, and when
the stream itself breaks (a bad gzip member, garbage bytes) the reader scans forward for the next gzip
member or `WARC/1.x` line that really starts a record and carries on from there. Every document read before
the damage is kept, and every position is logged so the file can be inspected.

Counters (in the `Stats` passed in): reader.records, reader.documents, reader.skipped_record_type.<type>,
reader.skipped_non_html, reader.skipped_http_status, reader.too_large, reader.empty_document,
reader.bad_http_body, reader.unsupported_content_encoding, reader.invalid_utf8,
reader.invalid_charset_bytes, reader.payload_truncated_by_crawler (kept: the crawler's own size cap,
declared in `WARC-Truncated`), reader.corrupt_records, reader.corrupt_file (once per damaged file) and
reader.resynced (each time reading resumed after damage).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from typing import IO, Any

import fsspec
import pyarrow as pa
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, ColumnBatcher, document_id
from corpusmill.io.decoding import count_decoding, decode_html, is_utf8
from corpusmill.io.http_body import PayloadError, decode_payload
from corpusmill.io.langcodes import first_language

log = logging.getLogger(__name__)

HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WARC_MAGIC = b"WARC/1."
_SCAN_BLOCK = 1 << 20


def read_warc(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    name: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the HTML pages of a WARC file's successful response records, with `html` filled.

    Ids are `<name>:<byte offset of the record>`; the WARC-Record-ID is kept as `source_id`.
    """
    yield from _read(uri, name, batch_size, stats, max_document_bytes, wet=False)


def read_wet(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    name: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the extracted text of a WET file's conversion records, with `text` and `lang` filled."""
    yield from _read(uri, name, batch_size, stats, max_document_bytes, wet=True)


def _read(
    uri: str, name: str | None, batch_size: int, stats: Stats, max_document_bytes: int, wet: bool
) -> Iterator[pa.RecordBatch]:
    name = name if name is not None else uri
    batcher = ColumnBatcher(name, batch_size)
    reader = _WarcFile(uri, name, stats, max_document_bytes, wet)
    with fsspec.open(uri, "rb") as raw:
        for doc in reader.documents(raw):
            stats.incr("reader.documents")
            batch = batcher.add(**doc)
            if batch is not None:
                yield batch
    batch = batcher.flush()
    if batch is not None:
        yield batch


def strip_brackets(value: str | None) -> str | None:
    """A WARC id or URI without the angle brackets that WARC 1.0 and some writers put around it."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


class _WarcFile:
    """Reads one WARC or WET file: record filtering, payload decoding and recovery from damage."""

    def __init__(self, uri: str, name: str, stats: Stats, max_document_bytes: int, wet: bool) -> None:
        self.uri = uri
        self.name = name
        self.stats = stats
        self.max_document_bytes = max_document_bytes
        self.wet = wet
        self.wanted = WarcRecordType.conversion if wet else WarcRecordType.response
        self.damaged = False

    def documents(self, raw: IO[bytes]) -> Iterator[dict[str, Any]]:
        """Documents of the whole file, resuming after damaged stretches where the format allows it."""
        start = 0
        while True:
            if start:
                raw.seek(start)
            last_good: int | None = None
            in_hand: int | None = None
            try:
                for record in ArchiveIterator(raw, parse_http=False):
                    in_hand = record.stream_pos
                    doc = self._convert(record)
                    last_good, in_hand = in_hand, None
                    if doc is not None:
                        yield doc
                return
            except (OSError, ValueError) as exc:
                damage_at = in_hand if in_hand is not None else last_good if last_good is not None else start
                # The record in hand, or the one this round began at, is lost; a failure while looking
                # for the next record is blamed on that record once reading resumes at it.
                if in_hand is not None or last_good is None:
                    self.stats.incr("reader.corrupt_records")
                self._mark_damaged()
                resume = _find_next_record(raw, damage_at + 1)
                where = f"resuming at byte {resume}" if resume is not None else "no readable record after it"
                log.warning("%s: unreadable data after byte %d (%s); %s", self.uri, damage_at, exc, where)
                if resume is None:
                    return
                self.stats.incr("reader.resynced")
                start = resume

    def _convert(self, record: WarcRecord) -> dict[str, Any] | None:
        self.stats.incr("reader.records")
        record_id = strip_brackets(record.record_id)
        if not record_id or record.headers.get("Content-Length") is None:
            return self._corrupt(record, "record without WARC-Record-ID or Content-Length header")
        if record.record_type != self.wanted:
            return self._skip(record, f"reader.skipped_record_type.{record.record_type}")
        if not self.wet:
            try:
                record.parse_http()
            except OSError as exc:
                _drain(record)
                return self._corrupt(record, f"malformed HTTP headers ({exc})")
            reason = _http_skip_reason(record)
            if reason is not None:
                return self._skip(record, reason)
        size = record.content_length
        if size > self.max_document_bytes:
            return self._skip(record, "reader.too_large")
        body = record.reader.read() if record.reader is not None else b""
        if len(body) < size:
            return self._corrupt(record, f"record cut short: {len(body)} of {size} payload bytes present")
        url = strip_brackets(record.headers.get("WARC-Target-URI"))
        if record.headers.get("WARC-Truncated") is not None:
            self.stats.incr("reader.payload_truncated_by_crawler")  # still a whole record; kept
        if self.wet:
            return self._wet_document(record, record_id, url, body)
        return self._html_document(record, record_id, url, body)

    def _html_document(
        self, record: WarcRecord, record_id: str, url: str | None, body: bytes
    ) -> dict[str, Any] | None:
        headers = record.http_headers
        try:
            payload = decode_payload(
                body,
                headers.get("Transfer-Encoding") if headers is not None else None,
                headers.get("Content-Encoding") if headers is not None else None,
                self.max_document_bytes,
            )
        except PayloadError as exc:
            self.stats.incr(f"reader.{exc.reason}")
            log.info("%s: record %s at byte %d skipped: %s", self.uri, record_id, record.stream_pos, exc)
            return None
        if not payload or payload.isspace():
            self.stats.incr("reader.empty_document")
            return None
        decoded = decode_html(payload, record.http_charset)
        count_decoding(self.stats, decoded)
        return {"doc_id": self._id(record), "source_id": record_id, "url": url, "html": decoded.utf8}

    def _wet_document(
        self, record: WarcRecord, record_id: str, url: str | None, body: bytes
    ) -> dict[str, Any] | None:
        if not body or body.isspace():
            self.stats.incr("reader.empty_document")
            return None
        text: str | bytes = body
        if not is_utf8(body):
            text = body.decode("utf-8", errors="replace")
            self.stats.incr("reader.invalid_utf8")
        lang = first_language(record.headers.get("WARC-Identified-Content-Language"))
        return {"doc_id": self._id(record), "source_id": record_id, "url": url, "text": text, "lang": lang}

    def _id(self, record: WarcRecord) -> str:
        # The record's byte offset: unique in the file (also after resyncing past damage) and fixed by its bytes.
        return document_id(self.name, record.stream_pos)

    def _skip(self, record: WarcRecord, reason: str) -> None:
        expected = record.content_length
        consumed = _drain(record)
        if consumed < expected:
            return self._corrupt(record, f"record cut short: {consumed} of {expected} payload bytes present")
        self.stats.incr(reason)
        return None

    def _corrupt(self, record: WarcRecord, detail: str) -> None:
        self.stats.incr("reader.corrupt_records")
        self._mark_damaged()
        log.warning(
            "%s: %s (record %s at byte %d); skipped", self.uri, detail, record.record_id, record.stream_pos
        )
        return None

    def _mark_damaged(self) -> None:
        if not self.damaged:
            self.damaged = True
            self.stats.incr("reader.corrupt_file")


def _http_skip_reason(record: WarcRecord) -> str | None:
    headers = record.http_headers
    if headers is None:
        return "reader.skipped_non_html"
    status = headers.status_code
    if status is None or not 200 <= status < 300:
        return "reader.skipped_http_status"
    content_type = (record.http_content_type or "").strip().lower()
    if content_type not in HTML_CONTENT_TYPES:
        return "reader.skipped_non_html"
    return None


def _drain(record: WarcRecord) -> int:
    return record.reader.consume() if record.reader is not None else 0


def _find_next_record(raw: IO[bytes], after: int) -> int | None:
    """Byte offset of the first gzip member or WARC header at or after `after` that starts a record."""
    try:
        raw.seek(0)
        head = raw.read(4)
        if head.startswith(_ZSTD_MAGIC):
            return None  # zstd frames span many records; there is no record boundary to resume from
        kind = "gzip" if head.startswith(_GZIP_MAGIC[:2]) else "plain"
        magic = _GZIP_MAGIC if kind == "gzip" else _WARC_MAGIC
        pos = after
        while True:
            raw.seek(pos)
            block = raw.read(_SCAN_BLOCK)
            if len(block) < len(magic):
                return None
            index = block.find(magic)
            while index >= 0:
                candidate = pos + index
                if _starts_record(raw, candidate, kind):
                    return candidate
                index = block.find(magic, index + 1)
            pos += len(block) - len(magic) + 1
    except (OSError, ValueError) as exc:  # a stream that cannot seek cannot resume
        log.warning("cannot scan for the next WARC record: %s", exc)
        return None


def _starts_record(raw: IO[bytes], offset: int, kind: str) -> bool:
    raw.seek(offset)
    head = raw.read(4096)
    if kind == "gzip":
        try:
            head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 16)
        except zlib.error:
            return False
    return head.startswith((b"WARC/1.0\r\n", b"WARC/1.1\r\n", b"WARC/1.0\n", b"WARC/1.1\n"))
