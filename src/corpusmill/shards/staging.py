"""Staged runs: a part's documents, sorted by shuffle key, streamed to Parquet files of bounded size.

A big input file is one part, so the scatter phase of `write_shards` cannot hold a part's tokens in memory.
`RunStager` buffers documents only up to a token budget (`RUN_TOKENS`), then sorts that run by (key, id) and
writes it as its own Parquet file with small row groups, one file per split (train, held-out). The gather
phase reads one key range from every run of every part; the row groups' key statistics let it skip the rest,
and it sorts what it read, so the shards do not depend on how documents were cut into runs.

Token lists are staged as `large_list<int32>` (64-bit offsets): a run of more than 2^31 tokens, or a
gathered range that large, must not wrap its offsets. Ids are `large_string` for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.atomic import atomic_path
from corpusmill.core.location import is_uri, remove_tree, run_path
from corpusmill.shards.split import HELDOUT, TRAIN

RUN_TOKENS = 32 * 2**20  # tokens buffered before a run is sorted and written: 128 MiB of int32
ROW_GROUP = 1024  # rows per Parquet row group, so a key-range filter reads little beyond its range
KEY_SPACE = 1 << 64
TOKEN_TYPE = pa.large_list(pa.int32())
STAGING_SCHEMA = pa.schema(
    [pa.field("key", pa.uint64()), pa.field("id", pa.large_string()), pa.field("tokens", TOKEN_TYPE)]
)


@dataclass
class _Chunk:
    """Consecutive kept documents of one batch: `values[offsets[i]:offsets[i + 1]]` is document i's tokens."""

    keys: list[int]
    ids: list[str]
    heldout: np.ndarray
    values: np.ndarray  # the batch's kept tokens, shared by the chunks cut from it
    offsets: np.ndarray  # len(ids) + 1 positions in `values`


@dataclass
class _Buffered:
    """A run's documents in arrival order, located in their chunks' token arrays (never concatenated)."""

    keys: list[int]
    ids: list[str]
    heldout: np.ndarray
    values: list[np.ndarray]
    chunk: np.ndarray  # per document: which of `values`
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, chunks: list[_Chunk]) -> _Buffered:
        """Index the chunks' documents as one sequence."""
        return cls(
            keys=[key for chunk in chunks for key in chunk.keys],
            ids=[doc_id for chunk in chunks for doc_id in chunk.ids],
            heldout=np.concatenate([chunk.heldout for chunk in chunks]),
            values=[chunk.values for chunk in chunks],
            chunk=np.concatenate([np.full(len(c.ids), n, dtype=np.int64) for n, c in enumerate(chunks)]),
            starts=np.concatenate([chunk.offsets[:-1] for chunk in chunks]),
            ends=np.concatenate([chunk.offsets[1:] for chunk in chunks]),
        )

    def table(self, rows: np.ndarray) -> pa.Table:
        """The staged rows `rows` (document numbers), in that order, with their tokens copied together."""
        pieces = [self.values[self.chunk[i]][self.starts[i] : self.ends[i]] for i in rows]
        values = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(self.ends[rows] - self.starts[rows], out=offsets[1:])
        tokens = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int32()))
        keys = pa.array([self.keys[i] for i in rows], pa.uint64())
        ids = pa.array([self.ids[i] for i in rows], pa.large_string())
        return pa.Table.from_arrays([keys, ids, tokens], schema=STAGING_SCHEMA)


class RunStager:
    """Streams one part's documents into key-sorted run files, holding at most about `run_tokens` tokens.

    Documents stay in the token arrays their batches arrived in until their run is written, one row group at
    a time, so a run's tokens are held once (not once more for a sorted copy) plus one row group.
    """

    def __init__(self, directory: Path, run_tokens: int = RUN_TOKENS) -> None:
        if run_tokens < 1:
            raise ValueError(f"run_tokens must be at least 1, got {run_tokens}")
        self.directory = run_path(directory)
        remove_tree(self.directory)  # runs of an earlier, interrupted attempt
        self.run_tokens = run_tokens
        self.runs: list[dict[str, Any]] = []
        self._chunks: list[_Chunk] = []
        self._buffered = 0
        self._flushes = 0

    def add(self, keys: list[int], ids: list[str], heldout: np.ndarray, tokens: pa.LargeListArray) -> None:
        """Buffer documents in order, writing a run each time the buffer reaches the budget."""
        values = tokens.values.to_numpy(zero_copy_only=False)
        offsets = tokens.offsets.to_numpy()
        start = 0
        while start < len(ids):
            # Take documents up to and including the one that fills the budget (always at least one).
            target = offsets[start] + self.run_tokens - self._buffered
            stop = min(max(int(np.searchsorted(offsets[1:], target)) + 1, start + 1), len(ids))
            chunk = _Chunk(
                keys[start:stop], ids[start:stop], heldout[start:stop], values, offsets[start : stop + 1]
            )
            self._chunks.append(chunk)
            self._buffered += int(offsets[stop] - offsets[start])
            start = stop
            if self._buffered >= self.run_tokens:
                self.flush()

    def flush(self) -> None:
        """Sort the buffered documents by (key, id) and write them as one run file per split."""
        if not self._chunks:
            return
        buffered = _Buffered.of(self._chunks)
        self._chunks, self._buffered = [], 0
        keys, ids = buffered.keys, buffered.ids
        order = np.asarray(sorted(range(len(ids)), key=lambda i: (keys[i], ids[i])), dtype=np.int64)
        held = buffered.heldout[order]
        for split, rows in ((TRAIN, order[~held]), (HELDOUT, order[held])):
            if len(rows):
                self.runs.append(self._write_run(split, buffered, rows))
        self._flushes += 1

    def finish(self) -> list[dict[str, Any]]:
        """Write what is still buffered; the runs written, as JSON-able dicts (split, path, counts)."""
        self.flush()
        return self.runs

    def _write_run(self, split: str, buffered: _Buffered, rows: np.ndarray) -> dict[str, Any]:
        path = self.directory / f"{split}-{self._flushes:05d}.parquet"
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, STAGING_SCHEMA) as writer:
            for start in range(0, len(rows), ROW_GROUP):
                writer.write_table(buffered.table(rows[start : start + ROW_GROUP]))
        tokens = int((buffered.ends[rows] - buffered.starts[rows]).sum())
        return {"split": split, "path": str(path), "documents": len(rows), "tokens": tokens}


def key_range(index: int, ranges: int) -> tuple[int, int]:
    """The `[low, high)` bounds of hash range `index` of `ranges` equal ranges of the 64-bit key space."""
    return index * KEY_SPACE // ranges, (index + 1) * KEY_SPACE // ranges


def read_range(paths: list[str], index: int, ranges: int) -> pa.Table:
    """The staged rows of every run in `paths` whose key falls in hash range `index`, sorted by (key, id)."""
    import pyarrow.dataset as ds  # imports pandas (0.2 s): only in the gather phase that needs it

    low, high = key_range(index, ranges)
    key = ds.field("key")
    condition = key >= pa.scalar(low, pa.uint64())
    if high < KEY_SPACE:
        condition = condition & (key < pa.scalar(high, pa.uint64()))
    # One thread: a range is a few row groups per run, and with a threaded scan a process's peak memory crept up
    # over its first gather tasks (bench.shard_memory: 98 -> 157 MB from a 1x to a 16x part; 110 -> 118 MB with one).
    filesystem = None
    if paths and is_uri(paths[0]):  # object storage: read through fsspec, as everything else is
        filesystem, _ = fsspec.core.url_to_fs(paths[0])
        paths = [filesystem._strip_protocol(path) for path in paths]
    dataset = ds.dataset(paths, format="parquet", schema=STAGING_SCHEMA, filesystem=filesystem)
    table = dataset.to_table(filter=condition, use_threads=False)
    return table.sort_by([("key", "ascending"), ("id", "ascending")])
