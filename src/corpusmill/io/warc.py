"""WARC and WET files as document batches, surviving the damage real crawl files have.

Records are read with fastwarc from a file object opened through fsspec, so any filesystem works. Payloads
are read raw and decoded in `http_body`, which is what lets a record cut short be told apart from a whole
one. Damage never ends the run: a record that is cut short or malformed is skipped, and when the stream
itself breaks (a bad gzip member, garbage bytes, a garbled record header, a Content-Length that is wrong) the
reader scans forward for the next gzip member or `WARC/1.x` line that really starts a record and carries on
from there (`warc_recovery`). Every document read before the damage is kept, and no damaged record is.

Every record that gives no document is one row of the file's `SkipLog` (position: the record's byte offset),
counted as `reader.<reason>`: skipped_record_type.<type>, skipped_non_html, skipped_http_status,
bad_http_header, too_large, empty_document, bad_http_body, unsupported_content_encoding, undecodable_text;
and for damage: bad_warc_header (no record id, or a header fastwarc cannot parse, such as a garbled version
line), bad_content_length (missing or not a number, or not where the block ends: see below), truncated_record
(fewer bytes than Content-Length says, at the end of the file or because the block runs into the next
record), corrupt_records (a record whose bytes cannot be read, such as a broken gzip member), unreadable_bytes
(garbage between records) and corrupt_file (once per damaged file, with the first damage).

A Content-Length smaller than the block shows only after the record was read: its declared block is
followed by more of the page instead of the "\r\n\r\n" that ends a record and the next record (in a gzipped
file: inside the record's own member). So what a record gives (its document, or its skip row and counts) is
held until the record after it has been read or the file has ended cleanly; when reading the next record
fails instead, the held record is checked against the raw bytes (`warc_recovery.misframed`) and, if its
block does not end where it says, dropped with its rows and counts for a single bad_content_length row at
its offset (detail: the declared and the found length; bytes: up to the next record, the tail after the
declared block included, which is not counted again as unreadable_bytes). Holding costs a few microseconds a
record; the raw bytes are only looked at after a failure. Counters only: reader.records, reader.documents,
reader.invalid_utf8, reader.invalid_charset_bytes, reader.documents_with_replacements,
reader.payload_truncated_by_crawler (kept: the crawler's own size cap, declared in `WARC-Truncated`) and
reader.resynced (each time reading resumed after damage).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO, Any

import fsspec
import pyarrow as pa
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io import warc_recovery as recovery
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, ColumnBatcher, document_id
from corpusmill.io.decoding import ReplacementLimit, count_decoding, decode_html, decode_replacing, is_utf8
from corpusmill.io.http_body import PayloadError, decode_payload
from corpusmill.io.langcodes import first_language

log = logging.getLogger(__name__)

HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_DIGITS = re.compile(r"[0-9]+")
_DRAIN_CHUNK = 1 << 16
_SEAM = 8192  # bytes of a drained piece searched again with the next one


def read_warc(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_replacement_share: float = 0.0,
    name: str | None = None,
    skips: SkipLog | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the HTML pages of a WARC file's successful response records, with `html` filled.

    Ids are `<name>:<byte offset of the record>`; the WARC-Record-ID is kept as `source_id`. Records that
    give no document go to `skips` (one is made on `stats` when none is given).
    """
    options = _Options(max_document_bytes, ReplacementLimit(max_replacement_share), wet=False)
    yield from _read(uri, name, batch_size, stats, options, skips)


def read_wet(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_replacement_share: float = 0.0,
    name: str | None = None,
    skips: SkipLog | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the extracted text of a WET file's conversion records, with `text` and `lang` filled."""
    options = _Options(max_document_bytes, ReplacementLimit(max_replacement_share), wet=True)
    yield from _read(uri, name, batch_size, stats, options, skips)


@dataclass(frozen=True)
class _Options:
    max_document_bytes: int
    replacements: ReplacementLimit
    wet: bool


def _read(
    uri: str, name: str | None, batch_size: int, stats: Stats, options: _Options, skips: SkipLog | None
) -> Iterator[pa.RecordBatch]:
    name = name if name is not None else uri
    batcher = ColumnBatcher(name, batch_size)
    batcher.check_utf8 = False  # pages and texts are bytes only once `decoding` found them valid UTF-8
    reader = _WarcFile(uri, name, stats, options, skips if skips is not None else SkipLog(name, stats))
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


class _Unframed(Exception):
    """A record whose own header or length is wrong, so the records after it must be found by scanning."""

    def __init__(self, reason: str, position: int, detail: str, nbytes: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.position = position
        self.detail = detail
        self.nbytes = nbytes


class _WarcFile:
    """Reads one WARC or WET file: record filtering, payload decoding and recovery from damage."""

    def __init__(self, uri: str, name: str, stats: Stats, options: _Options, skips: SkipLog) -> None:
        self.uri = uri
        self.name = name
        self.stats = stats
        self.options = options
        self.skips = skips
        self.wanted = WarcRecordType.conversion if options.wet else WarcRecordType.response
        self.kind: recovery.Kind = "plain"
        self.damaged = False

    def documents(self, raw: IO[bytes]) -> Iterator[dict[str, Any]]:
        """Documents of the whole file, resuming after damaged stretches where the format allows it."""
        self.kind = recovery.file_kind(raw)
        start: int | None = 0
        while start is not None:
            start = yield from self._documents_from(raw, start)

    def _documents_from(self, raw: IO[bytes], start: int) -> Generator[dict[str, Any], None, int | None]:
        """Documents from `start` on; returns where to resume after damage, or None at the end.

        What a record gives is held until the record after it is read (or the file ends cleanly): only then
        is its block known to end where its Content-Length says.
        """
        if start:
            raw.seek(start)
        held: _Held | None = None  # the last record read whole, not yet known to be framed right
        in_hand: int | None = None
        try:
            for record in ArchiveIterator(raw, parse_http=False):
                if held is not None and (doc := self._commit(held)) is not None:
                    yield doc
                held, in_hand = None, record.stream_pos
                self.stats.incr("reader.records")
                held, in_hand = self._hold(raw, record), None
            if held is not None and (doc := self._commit(held)) is not None:
                yield doc
            return None
        except _Unframed as lost:
            return self._unframed(raw, lost)
        except (OSError, ValueError) as exc:
            if in_hand is not None:
                return self._lost_record(raw, in_hand, exc)
            if held is None:
                return self._lost_between(raw, start, None, exc)
            found = recovery.misframed(raw, self.kind, held.position, held.length)
            if found is not None:
                return self._bad_length(raw, held, *found)
            if (doc := self._commit(held)) is not None:
                yield doc
            return self._lost_between(raw, start, held.position, exc)

    def _hold(self, raw: IO[bytes], record: WarcRecord) -> _Held:
        """Read one record with its document, skip rows and counts set aside until its framing is confirmed."""
        stats = Stats()
        skip_stats = stats if self.skips.stats is self.stats else Stats()
        held = _Held(
            record.stream_pos, record.content_length, stats, SkipLog(self.name, skip_stats), self.damaged
        )
        file_stats, file_skips = self.stats, self.skips
        self.stats, self.skips = held.stats, held.skips
        try:
            held.doc = self._convert(raw, record)
        finally:
            self.stats, self.skips = file_stats, file_skips
        return held

    def _commit(self, held: _Held) -> dict[str, Any] | None:
        """What a record gave, passed on now that the record after it was found where it should be."""
        if held.stats.counters or held.stats.histograms or held.stats.moments:
            self.stats.merge(held.stats)
        if held.skips.stats is not held.stats:
            self.skips.stats.merge(held.skips.stats)
        if held.skips.records:
            self.skips.records.extend(held.skips.records)
        return held.doc

    # --- one record -----------------------------------------------------------------------------------

    def _convert(self, raw: IO[bytes], record: WarcRecord) -> dict[str, Any] | None:
        position = record.stream_pos
        length = _block_length(record)
        if length is None:
            declared = record.headers.get("Content-Length")
            detail = (
                "no Content-Length" if declared is None else f"Content-Length {declared!r} is no byte count"
            )
            raise _Unframed("bad_content_length", position, detail)
        record_id = strip_brackets(record.record_id)
        if not record_id:
            return self._skip(raw, record, "bad_warc_header", "no WARC-Record-ID", damage=True)
        if record.record_type != self.wanted:
            return self._skip(raw, record, f"skipped_record_type.{record.record_type}")
        if not self.options.wet:
            try:
                record.parse_http()
            except OSError as exc:
                return self._skip(raw, record, "bad_http_header", f"malformed HTTP headers ({exc})")
            reason = _http_skip_reason(record)
            if reason is not None:
                return self._skip(raw, record, *reason)
        size = record.content_length
        if size > self.options.max_document_bytes:
            detail = f"payload of {size} bytes exceeds the limit of {self.options.max_document_bytes}"
            return self._skip(raw, record, "too_large", detail)
        body = self._take(raw, record, length, keep=True)
        url = strip_brackets(record.headers.get("WARC-Target-URI"))
        if record.headers.get("WARC-Truncated") is not None:
            self.stats.incr("reader.payload_truncated_by_crawler")  # still a whole record; kept
        if self.options.wet:
            return self._wet_document(record, record_id, url, body)
        return self._html_document(record, record_id, url, body)

    def _take(self, raw: IO[bytes], record: WarcRecord, length: int, *, keep: bool) -> bytes:
        """The rest of the record's block (empty unless `keep`), after checking it ends where it says.

        A block shorter than its Content-Length was cut off at the end of the file; one that holds the start
        of another record ran into the records after it (an uncompressed file's records follow each other,
        so a Content-Length that is too big swallows them). Either way the record is not kept.
        """
        expected = record.content_length
        if keep:
            body = record.reader.read() if record.reader is not None else b""
            got, swallowed = len(body), recovery.embedded_record(body)
        else:
            body = b""
            got, swallowed = _drain(record)
        position = record.stream_pos
        if got < expected:
            raise _Unframed(
                "truncated_record", position, f"record cut short: {got} of {expected} bytes present", got
            )
        if swallowed is not None and not recovery.block_fits(raw, self.kind, position, length):
            detail = f"Content-Length {length} runs into the next record, {swallowed} bytes into the payload"
            raise _Unframed("truncated_record", position, detail, swallowed)
        return body

    def _html_document(
        self, record: WarcRecord, record_id: str, url: str | None, body: bytes
    ) -> dict[str, Any] | None:
        headers = record.http_headers
        try:
            payload = decode_payload(
                body,
                headers.get("Transfer-Encoding") if headers is not None else None,
                headers.get("Content-Encoding") if headers is not None else None,
                self.options.max_document_bytes,
            )
        except PayloadError as exc:
            log.info("%s: record %s at byte %d skipped: %s", self.uri, record_id, record.stream_pos, exc)
            return self._record_skip(record, exc.reason, str(exc))
        if not payload or payload.isspace():
            return self._record_skip(record, "empty_document", "no payload")
        decoded = decode_html(payload, record.http_charset)
        count_decoding(self.stats, decoded)
        where = ("byte", record.stream_pos)
        limit = self.options.replacements
        if not limit.screen(
            self.skips,
            where,
            decoded.replacements,
            decoded.chars,
            nbytes=_block_length(record),
            how=decoded.encoding,
        ):
            return None
        return {"doc_id": self._id(record), "source_id": record_id, "url": url, "html": decoded.utf8}

    def _wet_document(
        self, record: WarcRecord, record_id: str, url: str | None, body: bytes
    ) -> dict[str, Any] | None:
        if not body or body.isspace():
            return self._record_skip(record, "empty_document", "no text")
        text: str | bytes = body
        if not is_utf8(body):
            text, replaced = decode_replacing(body)
            self.stats.incr("reader.invalid_utf8")
            where = ("byte", record.stream_pos)
            if not self.options.replacements.screen(
                self.skips, where, replaced, len(text), nbytes=_block_length(record)
            ):
                return None
        lang = first_language(record.headers.get("WARC-Identified-Content-Language"))
        return {"doc_id": self._id(record), "source_id": record_id, "url": url, "text": text, "lang": lang}

    def _id(self, record: WarcRecord) -> str:
        # The record's byte offset: unique in the file (also after resyncing past damage) and fixed by its bytes.
        return document_id(self.name, record.stream_pos)

    def _skip(
        self, raw: IO[bytes], record: WarcRecord, reason: str, detail: str = "", *, damage: bool = False
    ) -> None:
        """Pass over a record that gives no document, once its block has been checked to be whole."""
        self._take(raw, record, _block_length(record) or 0, keep=False)
        self._record_skip(record, reason, detail)
        if damage:
            self._mark_damaged(record.stream_pos, f"{reason}: {detail}")
        return None

    def _record_skip(self, record: WarcRecord, reason: str, detail: str) -> None:
        """One row for a whole record that gives no document; its size is its block's."""
        self.skips.skip(reason, "byte", record.stream_pos, nbytes=_block_length(record), detail=detail)
        return None

    # --- damage ---------------------------------------------------------------------------------------

    def _unframed(self, raw: IO[bytes], lost: _Unframed) -> int | None:
        """Skip a record whose length cannot be trusted and find the record after it by scanning."""
        resume = recovery.find_next_record(raw, self.kind, lost.position + 1)
        reason = lost.reason
        if reason == "bad_content_length" and resume is None:
            reason = "truncated_record"  # a header that ends the file without its Content-Length was cut
        return self._damage(reason, lost.position, lost.detail, lost.nbytes, resume)

    def _lost_record(self, raw: IO[bytes], position: int, exc: Exception) -> int | None:
        """Skip the record whose bytes could not be read (a broken compressed member, say)."""
        resume = recovery.find_next_record(raw, self.kind, position + 1)
        nbytes = None if resume is None else resume - position
        return self._damage("corrupt_records", position, f"unreadable record ({exc})", nbytes, resume)

    def _bad_length(self, raw: IO[bytes], held: _Held, found: int, end: int) -> int | None:
        """Skip a record whose block does not end where its Content-Length says: one row, at its offset.

        Its bytes run from its offset to `end` (the tail after the declared block included, which is not
        counted again as lost bytes); what it gave while it looked whole is dropped, rows and counts too.
        """
        self.damaged = held.damaged_before
        resume = recovery.find_next_record(raw, self.kind, end)
        detail = f"Content-Length {held.length} but the block holds {found} bytes"
        if found > held.length:
            detail += f": {found - held.length} bytes of it follow the declared end"
        return self._damage("bad_content_length", held.position, detail, end - held.position, resume)

    def _lost_between(self, raw: IO[bytes], start: int, last: int | None, exc: Exception) -> int | None:
        """Skip what follows the last whole record (offset `last`, or `start`) up to the next readable record."""
        if last is None:
            position = start
            resume = recovery.find_next_record(raw, self.kind, position + 1)
        else:
            end = recovery.record_end(raw, self.kind, last)
            position = last if end is None else end
            resume = recovery.find_next_record(raw, self.kind, position if end is not None else position + 1)
            if resume == position:  # a record starts right there: what failed was the end of the last one
                return self._overlong_member(last, resume, exc)
        reason, detail = recovery.what_is_at(raw, self.kind, position)
        nbytes = None if resume is None else resume - position
        return self._damage(reason, position, f"{detail} ({exc})", nbytes, resume)

    def _overlong_member(self, position: int, resume: int, exc: Exception) -> int | None:
        """A gzip member holding more than its record's block: bytes that belong to no record."""
        if self.kind != "gzip":
            return resume  # reading again from there says what is wrong with the record at `resume`
        detail = f"bytes after the block of this record, inside its gzip member, do not parse ({exc})"
        return self._damage("unreadable_bytes", position, detail, None, resume)

    def _damage(
        self, reason: str, position: int | None, detail: str, nbytes: int | None, resume: int | None
    ) -> int | None:
        """Record one damaged stretch and say where reading resumes (None: nothing readable after it)."""
        self.skips.skip(reason, "byte", position, nbytes=nbytes, detail=detail)
        self._mark_damaged(position, f"{reason}: {detail}")
        where = f"resuming at byte {resume}" if resume is not None else "no readable record after it"
        at = "an unknown byte" if position is None else f"byte {position}"
        log.warning("%s: %s at %s (%s); %s", self.uri, reason, at, detail, where)
        if resume is not None:
            self.stats.incr("reader.resynced")
        return resume

    def _mark_damaged(self, position: int | None, detail: str) -> None:
        if not self.damaged:
            self.damaged = True
            at = "an unknown byte" if position is None else f"byte {position}"
            self.skips.skip_file("corrupt_file", f"first damage at {at}: {detail}")


@dataclass
class _Held:
    """What one record gave, kept back until the record after it shows that its block ended where it said."""

    position: int
    length: int  # the declared block length
    stats: Stats
    skips: SkipLog
    damaged_before: bool  # whether the file was marked damaged before this record
    doc: dict[str, Any] | None = None


def _block_length(record: WarcRecord) -> int | None:
    """The block length the record header declares, or None when it is missing or not a number."""
    declared = record.headers.get("Content-Length")
    if declared is None or not _DIGITS.fullmatch(declared.strip()):
        return None
    return int(declared.strip())


def _http_skip_reason(record: WarcRecord) -> tuple[str, str] | None:
    headers = record.http_headers
    if headers is None:
        return "skipped_non_html", "no HTTP headers"
    status = headers.status_code
    if status is None:
        return "bad_http_header", "no HTTP status line"
    if not 200 <= status < 300:
        return "skipped_http_status", f"HTTP {status}"
    content_type = (record.http_content_type or "").strip().lower()
    if content_type not in HTML_CONTENT_TYPES:
        return "skipped_non_html", content_type or "no Content-Type"
    return None


def _drain(record: WarcRecord) -> tuple[int, int | None]:
    """Read a record's block to its end without keeping it: bytes read, and where a record header hid in it.

    Each piece is searched together with the end of the one before, so no header is missed at a seam.
    """
    if record.reader is None:
        return 0, None
    total = 0
    carry = b""
    swallowed: int | None = None
    while chunk := record.reader.read(_DRAIN_CHUNK):
        if swallowed is None:
            found = recovery.embedded_record(carry + chunk)
            swallowed = None if found is None else total - len(carry) + found
        total += len(chunk)
        carry = chunk[-_SEAM:]
    return total, swallowed
