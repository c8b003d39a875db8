"""Parquet files as document batches, column-wise from end to end.

The file is streamed batch by batch (never loaded whole) and only the columns the field options name are
read. Everything per row stays in Arrow compute kernels. A document's id is the file's name (relative to the
input root) and the row's 0-based index in the file, so it does not change between runs or mounts; the row's
own id column is kept as `source_id`. Rows without
text (or HTML, when html_field is set) and rows over the size limit are counted and dropped. A file whose
footer or data pages are corrupt is counted and keeps the batches read before the damage; a file that lacks
the text column altogether is a configuration mistake and raises instead.
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
from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, document_id
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
    name: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the documents of a Parquet file, one per row that has text (or HTML, when html_field is set).

    `name` is the file's name relative to the input root (ids and the `source` column); the uri by default.
    """
    name = name if name is not None else uri
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size} (reading {uri})")
    fields = FieldMap(text_field, id_field, url_field, lang_field, html_field)
    with fsspec.open(uri, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (pa.ArrowException, OSError) as exc:
            stats.incr("reader.corrupt_file")
            log.warning("%s: not a readable Parquet file (%s); skipped", uri, exc)
            return
        plan = _ColumnPlan.resolve(fields, parquet.schema_arrow.names, uri)
        row_offset = 0
        try:
            for batch in parquet.iter_batches(batch_size=batch_size, columns=plan.columns):
                documents = _documents(batch, plan, name, row_offset, max_document_bytes, stats)
                row_offset += batch.num_rows
                if documents.num_rows:
                    stats.incr("reader.documents", documents.num_rows)
                    yield documents
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            stats.incr("reader.corrupt_file")
            log.warning("%s: unreadable after row %d (%s); keeping the rows before it", uri, row_offset, exc)


@dataclass(frozen=True)
class _ColumnPlan:
    """For each reader column, the Parquet column and nested struct path it comes from (None: absent)."""

    sources: dict[str, tuple[str, tuple[str, ...]] | None]
    uri: str

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
        if sources[schema.TEXT] is None and sources[schema.HTML] is None:
            named = " or ".join(f"'{f}'" for f in (fields.text_field, fields.html_field) if f)
            raise ValueError(
                f"{uri}: no column {named} holds the documents (columns: {', '.join(names)}); "
                "set the input's text_field (or html_field) to the right column"
            )
        return cls(sources, uri)

    @property
    def columns(self) -> list[str]:
        """Top-level Parquet columns to read."""
        return sorted({source[0] for source in self.sources.values() if source is not None})

    def column(self, batch: pa.RecordBatch, name: str, target: pa.DataType, stats: Stats) -> pa.Array | None:
        """The values for reader column `name`, as `target` strings, or None when the source lacks it."""
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
        return _as_strings(values, target, f"{self.uri} column '{top}'", stats)


def _locate(field: str | None, names: list[str]) -> tuple[str, tuple[str, ...]] | None:
    if not field:
        return None
    if field in names:
        return field, ()
    top, *rest = field.split(".")
    return (top, tuple(rest)) if rest and top in names else None


def _as_strings(values: pa.Array, target: pa.DataType, where: str, stats: Stats) -> pa.Array:
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        try:
            return values.cast(target)
        except pa.ArrowInvalid:
            decoded = [None if v is None else v.decode("utf-8", errors="replace") for v in values.to_pylist()]
            replaced = sum(1 for v in decoded if v is not None and "\ufffd" in v)
            if replaced:
                stats.incr("reader.invalid_utf8", replaced)
            return pa.array(decoded, type=target)
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{where}: values of type {values.type} cannot be read as strings ({exc})") from exc


def _documents(
    batch: pa.RecordBatch, plan: _ColumnPlan, name: str, row_offset: int, max_bytes: int, stats: Stats
) -> pa.RecordBatch:
    n = batch.num_rows
    text = plan.column(batch, schema.TEXT, pa.large_string(), stats)
    html = plan.column(batch, schema.HTML, pa.large_string(), stats)
    present = pa.array([False] * n)
    size = pa.array([0] * n, pa.int64())
    for values in (text, html):
        if values is not None:
            lengths = pc.binary_length(values).cast(pa.int64())
            present = pc.or_(present, pc.fill_null(pc.greater(lengths, 0), False))
            size = pc.add(size, pc.fill_null(lengths, 0))
    too_large = pc.and_(present, pc.greater(size, max_bytes))
    keep = pc.and_(present, pc.invert(too_large))
    missing = n - (pc.sum(present).as_py() or 0)
    oversized = pc.sum(too_large).as_py() or 0
    if missing:
        stats.incr("reader.missing_text", missing)
    if oversized:
        stats.incr("reader.too_large", oversized)
    columns = {
        schema.ID: pa.array([document_id(name, row_offset + i) for i in range(n)], type=pa.string()),
        schema.TEXT: text if text is not None else pa.nulls(n, pa.large_string()),
        schema.URL: plan.column(batch, schema.URL, pa.string(), stats),
        schema.SOURCE: pa.array([name] * n, type=pa.string()),
        schema.LANG: plan.column(batch, schema.LANG, pa.string(), stats),
        schema.SOURCE_ID: _source_ids(plan.column(batch, schema.ID, pa.string(), stats)),
        schema.HTML: html if html is not None else pa.nulls(n, pa.large_string()),
    }
    arrays = [
        columns[f.name] if columns[f.name] is not None else pa.nulls(n, f.type) for f in schema.READER_SCHEMA
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.READER_SCHEMA).filter(keep)


def _source_ids(values: pa.Array | None) -> pa.Array | None:
    """The row's own ids, with empty strings as nulls (an empty id names nothing)."""
    if values is None:
        return None
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
