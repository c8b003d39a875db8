"""Hash-bucketed files: how the tasks of a group step hand rows to one another without a driver in between.

Every task of a bucketed phase writes one Arrow IPC file holding exactly `count` record batches, batch `b`
being its rows that hash to bucket `b` (possibly none). The task for bucket `b` of the next phase reads batch
`b` of every file of the previous phase: a shuffle through files, the same on every engine, with nothing
but file names passing through the driver. IPC files are read memory-mapped and a batch is found through
the file footer, so reading one bucket costs that bucket's bytes, not the file's.

Bucket numbers come from BLAKE2b of the value, so they are stable across processes, platforms and reruns
(Python's `hash()` is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusmill.core.atomic import atomic_path


def bucket_of(values: pa.Array | pa.ChunkedArray, count: int) -> np.ndarray:
    """The bucket (0 <= b < count) of every value of a string or binary column."""
    if count <= 1:
        return np.zeros(len(values), np.int64)
    result = np.empty(len(values), np.uint64)
    for position, value in enumerate(values.to_pylist()):
        data = value.encode("utf-8") if isinstance(value, str) else value
        result[position] = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return (result % np.uint64(count)).astype(np.int64)


def write_buckets(path: Path, table: pa.Table, buckets: np.ndarray, count: int) -> None:
    """Write `table` to `path` (atomically) as `count` batches, row `i` going to batch `buckets[i]`."""
    order = np.argsort(buckets, kind="stable")
    ordered = table.take(pa.array(order)).combine_chunks()
    bounds = np.searchsorted(buckets[order], np.arange(count + 1))
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_file(sink, ordered.schema) as writer,
    ):
        for bucket in range(count):
            piece = ordered.slice(int(bounds[bucket]), int(bounds[bucket + 1] - bounds[bucket]))
            writer.write_batch(_one_batch(piece))


def _one_batch(piece: pa.Table) -> pa.RecordBatch:
    batches = piece.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=piece.schema)


def read_bucket(paths: Iterable[str | Path], bucket: int, schema: pa.Schema | None = None) -> pa.Table:
    """Batch `bucket` of every file, as one table of `schema` (default: the first file's schema)."""
    tables = []
    for path in paths:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source)
            if bucket >= reader.num_record_batches:
                raise ValueError(
                    f"{path} holds {reader.num_record_batches} buckets, not {bucket + 1} or more: it was written "
                    "by a run with other settings; delete the step's directory and rerun"
                )
            schema = schema or reader.schema
            batch = reader.get_batch(bucket)
            if batch.num_rows:
                tables.append(pa.Table.from_batches([batch]).cast(schema))
    if schema is None:
        raise ValueError("read_bucket: no files to read and no schema to give an empty table")
    return pa.concat_tables(tables).combine_chunks() if tables else schema.empty_table()


def bucket_files(directory: Path, names: Sequence[str]) -> list[Path]:
    """The files a phase wrote, one per task name."""
    return [directory / f"{name}.arrow" for name in names]
