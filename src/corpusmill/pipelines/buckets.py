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
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.atomic import atomic_path
from corpusmill.core.location import open_parquet, run_path

PARQUET = ".parquet"


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
    """Write `table` to `path` (atomically) as `count` batches, row `i` going to batch `buckets[i]`.

    A `.parquet` path gets one row group per bucket (the persisted dedup index); any other an Arrow IPC file
    with one record batch per bucket (the phases' hand-over files, read memory-mapped).
    """
    order = np.argsort(buckets, kind="stable")
    ordered = table.take(pa.array(order)).combine_chunks()
    bounds = np.searchsorted(buckets[order], np.arange(count + 1))
    if path.suffix == PARQUET:
        _write_parquet_buckets(path, ordered, bounds, count)
        return
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_file(sink, ordered.schema) as writer,
    ):
        for bucket in range(count):
            piece = ordered.slice(int(bounds[bucket]), int(bounds[bucket + 1] - bounds[bucket]))
            writer.write_batch(_one_batch(piece))


def _write_parquet_buckets(path: Path, ordered: pa.Table, bounds: np.ndarray, count: int) -> None:
    # No statistics and no dictionaries: row groups are found by their number, keys and sketches are unique
    # hashes, and the min/max of 2 KB sketches in every page header and the footer tripled a small bucket.
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(
            tmp, ordered.schema, compression="zstd", write_statistics=False, use_dictionary=False
        ) as writer,
    ):
        for bucket in range(count):
            rows = int(bounds[bucket + 1] - bounds[bucket])
            piece = ordered.slice(int(bounds[bucket]), rows)
            writer.write_table(piece, row_group_size=max(1, rows))  # one row group per bucket, even empty


def bucket_count(path: Path) -> int:
    """How many buckets a bucketed file holds."""
    if run_path(path).suffix == PARQUET:
        return open_parquet(path).num_row_groups
    with _open_ipc(run_path(path)) as source:
        return pa.ipc.open_file(source).num_record_batches


def read_all(path: Path) -> pa.Table:
    """Every bucket of a bucketed file, as one table."""
    if run_path(path).suffix == PARQUET:
        return open_parquet(path).read()
    with _open_ipc(run_path(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _one_batch(piece: pa.Table) -> pa.RecordBatch:
    batches = piece.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=piece.schema)


def read_bucket(paths: Iterable[str | Path], bucket: int, schema: pa.Schema | None = None) -> pa.Table:
    """Batch `bucket` of every file, as one table of `schema` (default: the first file's schema)."""
    tables = []
    for path in paths:
        piece, file_schema = _read_one(run_path(path), bucket)
        schema = schema or file_schema
        if piece.num_rows:
            tables.append(piece.cast(schema))
    if schema is None:
        raise ValueError("read_bucket: no files to read and no schema to give an empty table")
    return pa.concat_tables(tables).combine_chunks() if tables else schema.empty_table()


def _read_one(path: Path, bucket: int) -> tuple[pa.Table, pa.Schema]:
    if path.suffix == PARQUET:
        parquet = open_parquet(path)
        _check_bucket(path, parquet.num_row_groups, bucket)
        return parquet.read_row_group(bucket), parquet.schema_arrow
    with _open_ipc(path) as source:
        reader = pa.ipc.open_file(source)
        _check_bucket(path, reader.num_record_batches, bucket)
        return pa.Table.from_batches([reader.get_batch(bucket)]), reader.schema


def _open_ipc(path: Path) -> Any:
    """A local IPC file memory-mapped; an object read through fsspec (the footer, then the bucket's range)."""
    if isinstance(path, Path):
        return pa.memory_map(str(path))
    return path.fs.open(path.path, "rb")


def _check_bucket(path: Path, count: int, bucket: int) -> None:
    if bucket >= count:
        raise ValueError(
            f"{path} holds {count} buckets, not {bucket + 1} or more: it was written by a run with other "
            "settings; delete the step's directory and rerun"
        )


def bucket_files(directory: Path, names: Sequence[str], suffix: str = ".arrow") -> list[Path]:
    """The files a phase wrote, one per task name."""
    return [directory / f"{name}{suffix}" for name in names]
