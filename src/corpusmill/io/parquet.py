"""Parquet files as document batches, column-wise from end to end.

The file is streamed batch by batch (never loaded whole) and only the columns the field options name are
read. Everything per row stays in Arrow compute kernels. A document's id is the file's name (relative to the
input root) and the row's 0-based index in the file, so it does not change between runs or mounts; the row's
own id column is kept as `source_id`. Rows without text (or HTML, when html_field is set) are skipped as
`missing_text`, as a JSONL line is: a value that is not a string (a number, a list) is no text, so a text
column of another type gives no documents rather than numbers turned into strings. Rows over the size limit
are skipped as `too_large`, and binary text that is not UTF-8 beyond `max_replacement_share` as
`undecodable_text`; each skipped row goes to the file's `SkipLog` with its row number. A file whose footer or
data pages are corrupt is recorded as `corrupt_file` and keeps the batches read before the damage; a file that
lacks the text column altogether is a configuration mistake and raises instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.core import schema
from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, document_id
from corpusmill.io.decoding import ReplacementLimit, decode_replacing
from corpusmill.io.fields import FieldMap

log = logging.getLogger(__name__)


def read_parquet(
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
    """Stream the documents of a Parquet file, one per row that has text (or HTML, when html_field is set).

    `name` is the file's name relative to the input root (ids and the `source` column); the uri by default.
    Skipped rows go to `skips` (one is made on `stats` when none is given).
    """
    name = name if name is not None else uri
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size} (reading {uri})")
    fields = FieldMap(text_field, id_field, url_field, lang_field, html_field)
    rows = _RowRules(
        name,
        max_document_bytes,
        ReplacementLimit(max_replacement_share),
        skips if skips is not None else SkipLog(name, stats),
    )
    with fsspec.open(uri, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (pa.ArrowException, OSError) as exc:
            rows.skips.skip_file("corrupt_file", f"not a readable Parquet file ({exc})")
            log.warning("%s: not a readable Parquet file (%s); skipped", uri, exc)
            return
        plan = _ColumnPlan.resolve(fields, parquet.schema_arrow.names, uri)
        row_offset = 0
        try:
            for batch in parquet.iter_batches(batch_size=batch_size, columns=plan.columns):
                documents = _documents(batch, plan, rows, row_offset, stats)
                row_offset += batch.num_rows
                if documents.num_rows:
                    stats.incr("reader.documents", documents.num_rows)
                    yield documents
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            rows.skips.skip_file("corrupt_file", f"rows from {row_offset} on are unreadable ({exc})")
            log.warning("%s: unreadable after row %d (%s); keeping the rows before it", uri, row_offset, exc)


@dataclass(frozen=True)
class _RowRules:
    """What a row needs to become a document, and where skipped rows are written down."""

    name: str
    max_document_bytes: int
    replacements: ReplacementLimit
    skips: SkipLog


@dataclass(frozen=True)
class _Text:
    """A text or HTML column as strings, with what decoding replaced, or why it holds no text at all."""

    values: pa.Array
    replacements: list[int] | None = None  # per row, only when some binary value was not UTF-8
    not_strings: str | None = None  # the column's type, when it is not a string type


@dataclass(frozen=True)
class _ColumnPlan:
    """For each reader column, the Parquet column and nested struct path it comes from (None: absent)."""

    sources: dict[str, tuple[str, tuple[str, ...]] | None]
    uri: str
    named_text: str  # the text and HTML fields as the recipe names them, for skip details

    @classmethod
    def resolve(cls, fields: FieldMap, names: list[str], uri: str) -> _ColumnPlan:
        wanted = {
            schema.TEXT: fields.text_field,
            schema.HTML: fields.html_field,
            schema.ID: fields.id_field,
            schema.URL: fields.url_field,
            schema.LANG: fields.lang_field,
        }
        sources = {column: _locate(field, names) for column, field in wanted.items()}
        named = " or ".join(f"'{f}'" for f in (fields.text_field, fields.html_field) if f)
        if sources[schema.TEXT] is None and sources[schema.HTML] is None:
            raise ValueError(
                f"{uri}: no column {named} holds the documents (columns: {', '.join(names)}); "
                "set the input's text_field (or html_field) to the right column"
            )
        return cls(sources, uri, named)

    @property
    def columns(self) -> list[str]:
        """Top-level Parquet columns to read."""
        return sorted({source[0] for source in self.sources.values() if source is not None})

    def column(self, batch: pa.RecordBatch, name: str, stats: Stats) -> pa.Array | None:
        """The values for reader column `name` (id, URL, language) as strings, or None when the source lacks it."""
        values = self._source(batch, name)
        if values is None:
            return None
        top = self.sources[name][0]  # type: ignore[index]
        return _as_strings(values, pa.string(), f"{self.uri} column '{top}'", stats)

    def text(self, batch: pa.RecordBatch, name: str, stats: Stats) -> _Text | None:
        """The text or HTML values; a column of another type than strings holds no text (all null)."""
        values = self._source(batch, name)
        if values is None:
            return None
        if not _is_stringlike(values.type):
            return _Text(pa.nulls(len(values), pa.large_string()), not_strings=str(values.type))
        if _is_binary(values.type):
            return _binary_text(values, stats)
        return _Text(values.cast(pa.large_string()))

    def _source(self, batch: pa.RecordBatch, name: str) -> pa.Array | None:
        source = self.sources[name]
        if source is None:
            return None
        top, path = source
        values = batch.column(top)
        try:
            for part in path:
                values = pc.struct_field(values, [part])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, KeyError) as exc:
            raise ValueError(
                f"{self.uri}: cannot take '{'.'.join(path)}' from column '{top}': {exc}"
            ) from exc
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        return values


def _locate(field: str | None, names: list[str]) -> tuple[str, tuple[str, ...]] | None:
    if not field:
        return None
    if field in names:
        return field, ()
    top, *rest = field.split(".")
    return (top, tuple(rest)) if rest and top in names else None


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)


def _is_stringlike(kind: pa.DataType) -> bool:
    """String or binary columns (and all-null ones) can hold text; numbers, lists and structs cannot."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)
        or _is_binary(kind)
    )


def _binary_text(values: pa.Array, stats: Stats) -> _Text:
    """Binary text as strings; values that are not UTF-8 are decoded with U+FFFD and their count kept."""
    try:
        return _Text(values.cast(pa.large_string()))
    except pa.ArrowInvalid:
        pass
    decoded: list[str | None] = []
    replacements: list[int] = []
    for value in values.to_pylist():
        text, replaced = (None, 0) if value is None else decode_replacing(value)
        decoded.append(text)
        replacements.append(replaced)
    stats.incr("reader.invalid_utf8", sum(1 for n in replacements if n))
    return _Text(pa.array(decoded, type=pa.large_string()), replacements)


def _as_strings(values: pa.Array, target: pa.DataType, where: str, stats: Stats) -> pa.Array:
    if _is_binary(values.type):
        try:
            return values.cast(target)
        except pa.ArrowInvalid:
            decoded = [None if v is None else decode_replacing(v) for v in values.to_pylist()]
            replaced = sum(1 for v in decoded if v is not None and v[1])
            if replaced:
                stats.incr("reader.invalid_utf8", replaced)
            return pa.array([None if v is None else v[0] for v in decoded], type=target)
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{where}: values of type {values.type} cannot be read as strings ({exc})") from exc


def _documents(
    batch: pa.RecordBatch, plan: _ColumnPlan, rows: _RowRules, row_offset: int, stats: Stats
) -> pa.RecordBatch:
    n = batch.num_rows
    text = plan.text(batch, schema.TEXT, stats)
    html = plan.text(batch, schema.HTML, stats)
    texts = [t for t in (text, html) if t is not None]
    present = pa.array([False] * n)
    size = pa.array([0] * n, pa.int64())
    for column in texts:
        lengths = pc.binary_length(column.values).cast(pa.int64())
        present = pc.or_(present, pc.fill_null(pc.greater(lengths, 0), False))
        size = pc.add(size, pc.fill_null(lengths, 0))
    too_large = pc.and_(present, pc.greater(size, rows.max_document_bytes))
    keep = pc.and_(present, pc.invert(too_large))
    replaced = _replacements(texts, n)
    if replaced is not None or not pc.all(keep).as_py():
        keep = _screen_rows(
            rows, row_offset, present, too_large, size, replaced, _missing_detail(plan, texts)
        )
    columns = {
        schema.ID: pa.array([document_id(rows.name, row_offset + i) for i in range(n)], type=pa.string()),
        schema.TEXT: text.values if text is not None else pa.nulls(n, pa.large_string()),
        schema.URL: plan.column(batch, schema.URL, stats),
        schema.SOURCE: pa.array([rows.name] * n, type=pa.string()),
        schema.LANG: plan.column(batch, schema.LANG, stats),
        schema.SOURCE_ID: _source_ids(plan.column(batch, schema.ID, stats)),
        schema.HTML: html.values if html is not None else pa.nulls(n, pa.large_string()),
    }
    arrays = [
        columns[f.name] if columns[f.name] is not None else pa.nulls(n, f.type) for f in schema.READER_SCHEMA
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.READER_SCHEMA).filter(keep)


def _missing_detail(plan: _ColumnPlan, texts: list[_Text]) -> str:
    wrong = [t.not_strings for t in texts if t.not_strings]
    if wrong:
        return f"no string in {plan.named_text} (the column holds {' and '.join(wrong)} values)"
    return f"no non-empty string in {plan.named_text}"


def _replacements(texts: list[_Text], n: int) -> list[tuple[int, int]] | None:
    """Per row, characters that decoding replaced and characters in all; None when nothing was replaced."""
    if not any(column.replacements for column in texts):
        return None
    counts = [(0, 0)] * n
    for column in texts:
        lengths = pc.fill_null(pc.utf8_length(column.values), 0).to_pylist()
        replaced = column.replacements or [0] * n
        counts = [
            (r + more, c + chars) for (r, c), more, chars in zip(counts, replaced, lengths, strict=True)
        ]
    return counts


def _screen_rows(
    rows: _RowRules,
    row_offset: int,
    present: pa.Array,
    too_large: pa.Array,
    size: pa.Array,
    replaced: list[tuple[int, int]] | None,
    missing: str,
) -> pa.Array:
    """Which rows to keep; every other row is written down, in row order, with why it was skipped."""
    sizes = size.to_pylist()
    keep = []
    for i, (has_text, large) in enumerate(zip(present.to_pylist(), too_large.to_pylist(), strict=True)):
        position = row_offset + i
        if not has_text:
            rows.skips.skip("missing_text", "row", position, nbytes=sizes[i] or None, detail=missing)
        elif large:
            detail = f"row of {sizes[i]} bytes exceeds the limit of {rows.max_document_bytes}"
            rows.skips.skip("too_large", "row", position, nbytes=sizes[i], detail=detail)
        elif replaced is not None and replaced[i][0]:
            count, chars = replaced[i]
            keep.append(
                rows.replacements.screen(rows.skips, ("row", position), count, chars, nbytes=sizes[i])
            )
            continue
        keep.append(bool(has_text and not large))
    return pa.array(keep, pa.bool_())


def _source_ids(values: pa.Array | None) -> pa.Array | None:
    """The row's own ids, with empty strings as nulls (an empty id names nothing)."""
    if values is None:
        return None
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
