"""The one Arrow document schema every reader, stage and engine speaks.

Documents travel as `pyarrow.RecordBatch` columns from reader to shard writer. The core columns are fixed;
stages add their own (`score__<name>`, `tokens`, ...) and declare them, so a recipe can be checked before
anything runs. `id` is the document's identity within a run (the file's name relative to the input root and
the record's place in it, see `corpusmill.io.batching.document_id`); `source` is that name; `source_id` is
the input's own id for the record, kept as found and never trusted to be unique. Keeping the types in one place means every part file of a run has the same schema, which
both Ray Data and Beam need to concatenate and regroup parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

ID = "id"
TEXT = "text"
URL = "url"
SOURCE = "source"
LANG = "lang"
SOURCE_ID = "source_id"
HTML = "html"

DROP_REASON = "drop_reason"
DROP_STAGE = "drop_stage"
DROP_DETAIL = "drop_detail"

CORE_FIELDS: tuple[pa.Field, ...] = (
    pa.field(ID, pa.string(), nullable=False),
    pa.field(TEXT, pa.large_string()),
    pa.field(URL, pa.string()),
    pa.field(SOURCE, pa.string()),
    pa.field(LANG, pa.string()),
    pa.field(SOURCE_ID, pa.string()),
)

# Readers of HTML sources fill `html` and leave `text` null; `extract` turns one into the other.
HTML_FIELD = pa.field(HTML, pa.large_string())

READER_SCHEMA = pa.schema([*CORE_FIELDS, HTML_FIELD])

DROP_FIELDS: tuple[pa.Field, ...] = (
    pa.field(DROP_REASON, pa.string()),
    pa.field(DROP_DETAIL, pa.string()),
)
REJECTED_STAGE_FIELD = pa.field(DROP_STAGE, pa.string())


def reader_batch(rows: Sequence[dict[str, str | None]]) -> pa.RecordBatch:
    """Build a batch in the reader schema from row dicts (missing keys become nulls)."""
    columns = {f.name: [row.get(f.name) for row in rows] for f in READER_SCHEMA}
    return pa.RecordBatch.from_pydict(columns, schema=READER_SCHEMA)


def set_column(batch: pa.RecordBatch, field: pa.Field, values: pa.Array | Iterable) -> pa.RecordBatch:
    """Add or replace one column, cast to the declared type so every part keeps one schema."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, type=field.type)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != field.type:
        array = array.cast(field.type)
    index = batch.schema.get_field_index(field.name)
    if index >= 0:
        return batch.set_column(index, field, array)
    return batch.append_column(field, array)


def drop_columns(batch: pa.RecordBatch, names: Iterable[str]) -> pa.RecordBatch:
    """Remove the named columns where present."""
    present = [name for name in names if name in batch.schema.names]
    return batch.drop_columns(present) if present else batch


def mark_drops(
    batch: pa.RecordBatch, reasons: Sequence[str | None], details: Sequence[str | None] | None = None
) -> pa.RecordBatch:
    """Record a drop reason per row (None keeps the row); rows already marked keep their first reason."""
    if len(reasons) != batch.num_rows:
        raise ValueError(f"mark_drops got {len(reasons)} reasons for {batch.num_rows} rows")
    details = details if details is not None else [None] * len(reasons)
    old_reasons = column_or_nulls(batch, DROP_REASON)
    old_details = column_or_nulls(batch, DROP_DETAIL)
    merged_reasons = [old if old is not None else new for old, new in zip(old_reasons, reasons, strict=True)]
    merged_details = [
        old_d if old_r is not None else new_d
        for old_r, old_d, new_d in zip(old_reasons, old_details, details, strict=True)
    ]
    batch = set_column(batch, DROP_FIELDS[0], merged_reasons)
    return set_column(batch, DROP_FIELDS[1], merged_details)


def column_or_nulls(batch: pa.RecordBatch, name: str) -> list[Any]:
    """A column's values, or a None per row where the batch has no such column (a drop column not yet
    written, a text column of a reader that gives HTML only)."""
    if name in batch.schema.names:
        return batch.column(name).to_pylist()
    return [None] * batch.num_rows


def column_as_bytes(batch: pa.RecordBatch, name: str) -> list[bytes | None]:
    """A string column's values as UTF-8 bytes (None per row where there is no such column): the same
    buffers read out as bytes, for code that hands pages to a sandbox without building Python strings."""
    if name in batch.schema.names:
        return batch.column(name).cast(pa.large_binary()).to_pylist()
    return [None] * batch.num_rows
