"""JSON Lines files (plain, gzip, zstd, bz2, xz) as document batches.

Each line is decoded on its own, so one bad line costs only itself: invalid JSON, a non-object or a line
without text is recorded in the file's `SkipLog` with its line number (and logged, the first few per file)
and skipped. A document's id is the file's name (relative to the input root) and its 1-based line number,
which stays the same as long as the file does and wherever it is mounted; the line's own id field is kept as
`source_id`. A compressed file that is cut off or corrupt keeps every line that decompressed whole before the
damage; the line the damage cut is recorded as `truncated_line` and the damage itself as `corrupt_file`.

Bytes that are not UTF-8 (and JSON escapes of lone surrogates, which no UTF-8 text can hold) become U+FFFD;
a document with more of those than `max_replacement_share` allows is skipped as `undecodable_text`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, ColumnBatcher, document_id
from corpusmill.io.decoding import ReplacementLimit
from corpusmill.io.fields import FieldMap, as_id, as_text, lookup
from corpusmill.io.lines import StreamDamage, iter_lines

log = logging.getLogger(__name__)

# Individual bad lines logged per file before only the totals are reported.
MAX_LOGGED_LINES = 10

# Lone surrogates: invalid input bytes (decoded with surrogateescape) and JSON escapes UTF-8 cannot hold.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


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
    max_replacement_share: float = 0.0,
    name: str | None = None,
    skips: SkipLog | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the documents of a JSONL file, one per line that has text (or HTML, when html_field is set).

    `name` is the file's name relative to the input root (ids and the `source` column); the uri by default.
    Skipped lines go to `skips` (one is made on `stats` when none is given).
    """
    name = name if name is not None else uri
    rules = _LineRules(
        FieldMap(text_field, id_field, url_field, lang_field, html_field),
        max_document_bytes,
        ReplacementLimit(max_replacement_share),
    )
    batcher = ColumnBatcher(name, batch_size)
    problems = _LineProblems(uri, skips if skips is not None else SkipLog(name, stats))
    line_number = 0
    try:
        for line_number, line in enumerate(iter_lines(uri), start=1):
            doc = _document(line, line_number, name, rules, stats, problems)
            if doc is None:
                continue
            stats.incr("reader.documents")
            batch = batcher.add(**doc)
            if batch is not None:
                yield batch
    except StreamDamage as damage:
        problems.damaged(damage, line_number)
    problems.summarize()
    batch = batcher.flush()
    if batch is not None:
        yield batch


@dataclass(frozen=True)
class _LineRules:
    """What a line needs to become a document: where its fields are, its size and decoding limits."""

    fields: FieldMap
    max_document_bytes: int
    replacements: ReplacementLimit


def _document(
    line: bytes, line_number: int, name: str, rules: _LineRules, stats: Stats, problems: _LineProblems
) -> dict[str, Any] | None:
    if not line or line.isspace():
        return None
    if len(line) > rules.max_document_bytes:
        return problems.skip(
            "too_large", line_number, f"line of {len(line)} bytes exceeds the limit", len(line)
        )
    try:
        decoded, invalid = line.decode("utf-8"), False
    except UnicodeDecodeError:
        decoded, invalid = line.decode("utf-8", errors="surrogateescape"), True
        stats.incr("reader.invalid_utf8")
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as exc:
        detail = f"invalid JSON ({exc.msg} at column {exc.colno})"
        return problems.skip("bad_json", line_number, detail, len(line))
    if not isinstance(record, dict):
        detail = f"a JSON {type(record).__name__}, not an object"
        return problems.skip("bad_json", line_number, detail, len(line))
    fields = rules.fields
    text = as_text(lookup(record, fields.text_field))
    html = as_text(lookup(record, fields.html_field))
    if not text and not html:
        wanted = " or ".join(f"'{f}'" for f in (fields.text_field, fields.html_field) if f)
        return problems.skip("missing_text", line_number, f"no non-empty string in {wanted}", len(line))
    doc = {
        "doc_id": document_id(name, line_number),
        "source_id": as_id(lookup(record, fields.id_field)),
        "text": text,
        "url": as_text(lookup(record, fields.url_field)),
        "lang": as_text(lookup(record, fields.lang_field)),
        "html": html,
    }
    if invalid or "\\ud" in decoded or "\\uD" in decoded:
        doc, replaced = _without_surrogates(doc)
        chars = len(doc["text"] or "") + len(doc["html"] or "")
        if not rules.replacements.screen(
            problems.skips, ("line", line_number), replaced, chars, nbytes=len(line)
        ):
            return None
    return doc


def _without_surrogates(doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The document with every lone surrogate as U+FFFD, and how many its text and HTML held."""
    replaced = 0
    clean: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, str):
            value, count = _SURROGATE.subn("\ufffd", value)
            replaced += count if key in ("text", "html") else 0
        clean[key] = value
    return clean, replaced


class _LineProblems:
    """Records skipped lines and logs the first few of each file with their line numbers."""

    def __init__(self, uri: str, skips: SkipLog) -> None:
        self.uri = uri
        self.skips = skips
        self.count = 0

    def skip(self, reason: str, line_number: int, detail: str, nbytes: int | None = None) -> None:
        """Record one skipped line and log it while the per-file budget lasts."""
        self.skips.skip(reason, "line", line_number, nbytes=nbytes, detail=detail)
        self.count += 1
        if self.count <= MAX_LOGGED_LINES:
            log.warning("%s line %d: %s; skipped", self.uri, line_number, detail)
        return None

    def damaged(self, damage: StreamDamage, last_line: int) -> None:
        """Record compressed data that ends early or breaks after `last_line`, the last whole line."""
        lost_from = last_line + 1
        if damage.partial:
            self.skips.skip(
                "truncated_line",
                "line",
                lost_from,
                nbytes=len(damage.partial),
                detail=f"{len(damage.partial)} bytes of the line survive the damage",
            )
        self.skips.skip_file("corrupt_file", f"lines from {lost_from} on are lost: {damage}")
        log.warning(
            "%s: %s; read every whole line before line %d, lost the rest", self.uri, damage, lost_from
        )

    def summarize(self) -> None:
        """Report how many lines went unlogged."""
        if self.count > MAX_LOGGED_LINES:
            log.warning("%s: %d lines skipped in all (see the reader.* counters)", self.uri, self.count)
