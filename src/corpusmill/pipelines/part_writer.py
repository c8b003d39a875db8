"""A parquet file written batch by batch under a temporary name and renamed into place when complete.

The first batch fixes the schema; later batches are cast to it, so a column that happens to be all-null in
one batch cannot change the file's types. A part with no rows writes no file at all.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.atomic import naming_errors, publish, temporary_file


class PartWriter:
    """Streaming, atomic parquet writer for one part."""

    def __init__(self, path: Path, compression: str = "zstd") -> None:
        self.path = path
        self.compression = compression
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch (empty batches are ignored)."""
        if batch.num_rows == 0:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = temporary_file(self.path)
            self._writer = pq.ParquetWriter(self._tmp, batch.schema, compression=self.compression)
        elif batch.schema != self._writer.schema:
            batch = _conform(batch, self._writer.schema, self.path)
        with naming_errors(self.path):
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> int:
        """Finish the file and move it into place; returns the row count (0: nothing was written)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            assert self._tmp is not None
            with naming_errors(self.path):
                writer.close()
                publish(self._tmp, self.path)
            self._tmp = None
        return self.rows

    def abort(self) -> None:
        """Discard an unfinished file (safe to call after `close`)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
        self._tmp = None


def _conform(batch: pa.RecordBatch, target: pa.Schema, path: Path) -> pa.RecordBatch:
    if batch.schema.names != target.names:
        raise ValueError(
            f"{path}: batch columns {batch.schema.names} differ from the part's columns {target.names}"
        )
    return pa.RecordBatch.from_arrays(
        [column.cast(field.type) for column, field in zip(batch.columns, target, strict=True)], schema=target
    )
