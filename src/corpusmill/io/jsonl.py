"""JSON Lines files (plain, gzip, zstd, bz2, xz) as document batches.

Each line is decoded on its own, so one bad line costs only itself: invalid JSON, a non-object or a line
without text is counted, logged with its line number (the first few per file, then a summary) and skipped.
A document's id is the file's name (relative to the input root) and its 1-based line number, which stays the
same as long as the file does and wherever it is mounted; the line's own id field is kept as `source_id`. A file that is cut off or corrupt keeps every line read before the damage.
"""

from __future__ import annotations

import json
import logging
import lzma
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import zstandard

from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, ColumnBatcher, document_id
from corpusmill.io.fields import FieldMap, as_id, as_text, lookup
from corpusmill.io.lines import iter_lines

log = logging.getLogger(__name__)

# Individual bad lines logged per file before only the totals are reported.
MAX_LOGGED_LINES = 10

_SURROGATE = re.compile(r"[\ud800-\udfff]")

_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError)


def read_jsonl(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    text_field: str | None = "text",
    id_field: str | None = "id",
    url_field: str | None = "url",
    lang_field: str | None = None,
    html_field: str | None = None,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    name: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the documents of a JSONL file, one per line that has text (or HTML, when html_field is set).

    `name` is the file's name relative to the input root (ids and the `source` column); the uri by default.
    """
    fields = FieldMap(text_field, id_field, url_field, lang_field, html_field)
    name = name if name is not None else uri
    batcher = ColumnBatcher(name, batch_size)
    problems = _LineProblems(uri, stats)
    line_number = 0
    try:
        for line_number, line in enumerate(iter_lines(uri), start=1):
            doc = _document(line, line_number, name, fields, max_document_bytes, stats, problems)
            if doc is None:
                continue
            stats.incr("reader.documents")
            batch = batcher.add(**doc)
            if batch is not None:
                yield batch
    except _STREAM_ERRORS as exc:
        stats.incr("reader.corrupt_file")
        log.warning("%s: unreadable after line %d (%s); keeping the lines before it", uri, line_number, exc)
    problems.summarize()
    batch = batcher.flush()
    if batch is not None:
        yield batch


def _document(
    line: bytes,
    line_number: int,
    name: str,
    fields: FieldMap,
    max_document_bytes: int,
    stats: Stats,
    problems: _LineProblems,
) -> dict[str, Any] | None:
    if not line or line.isspace():
        return None
    if len(line) > max_document_bytes:
        return problems.skip("reader.too_large", line_number, f"line of {len(line)} bytes exceeds the limit")
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError:
        decoded = line.decode("utf-8", errors="replace")
        stats.incr("reader.invalid_utf8")
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return problems.skip(
            "reader.bad_json", line_number, f"invalid JSON ({exc.msg} at column {exc.colno})"
        )
    if not isinstance(record, dict):
        return problems.skip("reader.bad_json", line_number, f"a JSON {type(record).__name__}, not an object")
    text = as_text(lookup(record, fields.text_field))
    html = as_text(lookup(record, fields.html_field))
    if not text and not html:
        wanted = " or ".join(f"'{f}'" for f in (fields.text_field, fields.html_field) if f)
        return problems.skip("reader.missing_text", line_number, f"no non-empty string in {wanted}")
    doc = {
        "doc_id": document_id(name, line_number),
        "source_id": as_id(lookup(record, fields.id_field)),
        "text": text,
        "url": as_text(lookup(record, fields.url_field)),
        "lang": as_text(lookup(record, fields.lang_field)),
        "html": html,
    }
    if "\\ud" in decoded or "\\uD" in decoded:  # JSON may escape lone surrogates, which UTF-8 cannot hold
        doc = {key: _without_surrogates(value) for key, value in doc.items()}
    return doc


def _without_surrogates(value: str | None) -> str | None:
    return None if value is None else _SURROGATE.sub("\ufffd", value)


class _LineProblems:
    """Counts skipped lines and logs the first few of each file with their line numbers."""

    def __init__(self, uri: str, stats: Stats) -> None:
        self.uri = uri
        self.stats = stats
        self.count = 0

    def skip(self, counter: str, line_number: int, detail: str) -> None:
        """Count one skipped line and log it while the per-file budget lasts."""
        self.stats.incr(counter)
        self.count += 1
        if self.count <= MAX_LOGGED_LINES:
            log.warning("%s line %d: %s; skipped", self.uri, line_number, detail)
        return None

    def summarize(self) -> None:
        """Report how many lines went unlogged."""
        if self.count > MAX_LOGGED_LINES:
            log.warning("%s: %d lines skipped in all (see reader.* counters)", self.uri, self.count)
