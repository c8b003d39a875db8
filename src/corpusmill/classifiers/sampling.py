"""Which documents the annotator sees: a deterministic hash sample that survives any re-partitioning.

Each document gets the key `blake2b(f"{seed}:{id}")`; the sample is the `n` documents with the smallest keys.
The key depends on nothing but the seed and the stable document id, so the same run read in a different file
order, or split into a different number of parts, gives the same sample, and a larger `n` extends a smaller
one (its first `n` rows are the smaller sample), which keeps earlier annotations useful when a sample grows.

The run is streamed batch by batch and only a heap of the `n` best candidates is kept, so memory is bounded by
the sample, not by the run. Text is materialised only for rows that enter the heap.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core import schema

logger = logging.getLogger(__name__)

DOCUMENTS_DIR = "documents"
SAMPLE_SCHEMA = pa.schema(
    [pa.field(schema.ID, pa.string(), nullable=False), pa.field(schema.TEXT, pa.large_string())]
)
_READ_BATCH_ROWS = 8192


def sample_key(document_id: str, seed: int = 0) -> bytes:
    """The sort key of a document for a seed: the smaller, the earlier it is sampled."""
    return hashlib.blake2b(f"{seed}:{document_id}".encode()).digest()


def document_files(run_dir: str | Path) -> list[Path]:
    """The documents/*.parquet files of a finished run (an error says what is missing)."""
    folder = Path(run_dir) / DOCUMENTS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist; is {run_dir} a finished run directory?")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"{folder} holds no .parquet files; a recipe of sink stages only keeps its documents in its inputs"
        )
    return files


def _batches(files: list[Path]) -> Iterator[tuple[Path, pa.RecordBatch]]:
    for path in files:
        parquet = pq.ParquetFile(path)
        missing = {schema.ID, schema.TEXT} - set(parquet.schema_arrow.names)
        if missing:
            raise ValueError(f"{path} lacks the columns {sorted(missing)} every document file must have")
        for batch in parquet.iter_batches(batch_size=_READ_BATCH_ROWS, columns=[schema.ID, schema.TEXT]):
            yield path, batch


def sample_documents(run_dir: str | Path, n: int, seed: int = 0) -> pa.Table:
    """The `n` documents with the smallest keys for `seed`, as (id, text) ordered by key."""
    if n < 0:
        raise ValueError(f"sample size must not be negative, got {n}")
    # Max-heap of the n smallest keys so far, as (-key, id, text); the root is the worst kept candidate.
    heap: list[tuple[int, str, str]] = []
    kept: set[str] = set()
    skipped_null = 0
    files = document_files(run_dir)
    for path, batch in _batches(files):
        ids = batch.column(0).to_pylist()
        texts = batch.column(1)
        for row, doc_id in enumerate(ids):
            if doc_id is None:
                raise ValueError(f"{path} has a document with a null id; ids must be set by the reader")
            if n == 0:
                break
            key = -int.from_bytes(sample_key(doc_id, seed))
            if len(heap) == n and key <= heap[0][0]:
                continue
            if doc_id in kept:
                logger.warning(
                    "document id %s appears more than once in %s; keeping the first", doc_id, run_dir
                )
                continue
            text = texts[row].as_py()
            if text is None:
                skipped_null += 1
                continue
            kept.add(doc_id)
            if len(heap) < n:
                heapq.heappush(heap, (key, doc_id, text))
            else:
                _, evicted, _ = heapq.heapreplace(heap, (key, doc_id, text))
                kept.discard(evicted)
    if skipped_null:
        logger.info("skipped %d sampled candidates without text in %s", skipped_null, run_dir)
    ordered = sorted(heap, key=lambda item: -item[0])
    logger.info(
        "sampled %d of the documents in %d files of %s (seed %d)", len(ordered), len(files), run_dir, seed
    )
    return pa.table(
        {schema.ID: [doc_id for _, doc_id, _ in ordered], schema.TEXT: [text for _, _, text in ordered]},
        schema=SAMPLE_SCHEMA,
    )
