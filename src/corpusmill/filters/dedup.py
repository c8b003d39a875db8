"""Exact and near-duplicate removal as group stages.

Both stages only say which key each document falls under; grouping and connected components are shared
(`core.grouping`), and the runner drops every document that is not the smallest id of its component.
- `dedup_exact`: the key is a hash of the (whitespace-normalised) text.
- `dedup_minhash`: MinHash signatures over word n-gram shingles, cut into LSH bands; each band is a key, so
  two documents sharing any band are candidates. Band count and width are the split datasketch's optimiser
  chooses (`filters.lsh_banding`: the same search, without importing SciPy), weighted towards recall; each
  candidate pair is then verified by the Jaccard similarity its signatures estimate, and confirmed pairs form
  connected components.

`dedup_minhash_v2` computes the signatures of a whole batch in numpy (`filters.minhash`), cuts band keys in
one vectorized pass, and verifies candidates on a bottom-k sketch of each document's shingles (exact Jaccard
similarity for documents of up to 4 * num_perm shingles), so pairs a few points either side of the threshold
are decided by their real similarity rather than by the spread of a 128-value estimate. `dedup_minhash_v1`
hashes each shingle with datasketch, one document at a time, verifies on the MinHash signatures, and is kept
so that a recipe pinned to it produces exactly its old output. Both verify all candidate pairs in a few numpy
passes. The versions' keys and side data differ and must never be mixed in one run, and are not, since a run
is keyed by the resolved stage version.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from corpusmill.core import schema
from corpusmill.core.grouping import DUPLICATE_OF, ID, KEY, KEY_SCHEMA
from corpusmill.core.stage import GroupStage, StageParams, register
from corpusmill.filters.lsh_banding import optimal_banding
from corpusmill.filters.minhash import (
    MinHasher,
    band_keys,
    char_table,
    matching_fraction,
    sketch_similarity,
)

SIGNATURE = "signature"
# uint32 values per chunk of a binary column: Arrow's 32-bit offsets address at most 2 GiB of bytes.
_MAX_CHUNK_VALUES = (1 << 31) // 4 - 1
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


def _texts(batch: pa.RecordBatch) -> list[str]:
    return [text or "" for text in batch.column(schema.TEXT).to_pylist()]


class ExactParams(StageParams):
    """How text is normalised before hashing."""

    normalize_whitespace: bool = True
    lowercase: bool = False


@register
class DedupExact(GroupStage):
    """Drop documents whose (normalised) text equals that of a document with a smaller id."""

    name = "dedup_exact"
    Params = ExactParams
    requires = (schema.ID, schema.TEXT)
    drop_reason = "exact_duplicate"

    def keys(self, batch: pa.RecordBatch) -> pa.Table:
        """One key per document: the BLAKE2b digest of its normalised text."""
        params: ExactParams = self.params  # type: ignore[assignment]
        digests = []
        for text in _texts(batch):
            if params.normalize_whitespace:
                text = _WHITESPACE.sub(" ", text).strip()
            if params.lowercase:
                text = text.lower()
            digests.append(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest())
        self.stats.incr("dedup_exact.keys", len(digests))
        return pa.table({KEY: digests, ID: batch.column(schema.ID)}, schema=KEY_SCHEMA)


class MinHashParams(StageParams):
    """MinHash/LSH settings; bands and rows are derived from the threshold unless both are given."""

    threshold: float = Field(default=0.8, gt=0.0, lt=1.0)
    num_perm: int = Field(default=128, ge=16, le=1024)
    ngram_size: int = Field(default=5, ge=1, le=32)
    lowercase: bool = True
    seed: int = 1
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    recall_weight: float = Field(default=0.9, gt=0.0, lt=1.0)
    verify: bool = True

    @model_validator(mode="after")
    def _bands_fit(self) -> MinHashParams:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they follow from threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def banding(self) -> tuple[int, int]:
        """(bands, rows) for this threshold; missed duplicates weigh `recall_weight`, false candidates the rest.

        Weighing recall high finds nearly every pair above the threshold; `verify` then removes the false
        candidates by their estimated Jaccard similarity, so precision does not pay for the recall.
        """
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return optimal_banding(self.threshold, self.num_perm, self.recall_weight)


def shingles(text: str, ngram_size: int, lowercase: bool) -> list[bytes]:
    """Word n-grams of a text (the whole text as one shingle when it is shorter than n words)."""
    words = _WORD.findall(text.lower() if lowercase else text)
    if not words:
        return []
    if len(words) <= ngram_size:
        return [" ".join(words).encode("utf-8")]
    return list(
        {" ".join(words[i : i + ngram_size]).encode("utf-8") for i in range(len(words) - ngram_size + 1)}
    )


def _fixed_width_binary(rows: np.ndarray) -> pa.Array:
    """A binary array with one value per row of a 2-D uint8 array, built without a Python loop."""
    rows = np.ascontiguousarray(rows, np.uint8)
    count, width = rows.shape
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), count, [None, pa.py_buffer(rows)])
    return fixed.cast(pa.binary())


def _binary_column(values: np.ndarray, counts: np.ndarray) -> pa.ChunkedArray:
    """One binary value per document holding its `counts[i]` little-endian uint32 values, without a loop.

    Arrow's binary offsets are 32-bit, so the values go into as many chunks as needed to stay under 2 GiB.
    """
    ends = np.cumsum(counts.astype(np.int64))
    data = values.astype("<u4")
    chunks, first, start = [], 0, 0
    while first < len(counts) or not chunks:
        last = max(first + 1, int(np.searchsorted(ends, start + _MAX_CHUNK_VALUES, side="right")))
        last = min(last, len(counts))
        stop = int(ends[last - 1]) if last else 0
        offsets = np.zeros(last - first + 1, np.int32)
        offsets[1:] = (ends[first:last] - start) * 4
        chunks.append(
            pa.BinaryArray.from_buffers(
                pa.binary(), last - first, [None, pa.py_buffer(offsets), pa.py_buffer(data[start:stop])]
            )
        )
        first, start = last, stop
    return pa.chunked_array(chunks, pa.binary())


def _side_values(side: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The side table's signatures as one uint32 array, with each document's start and length in it.

    Chunk by chunk, so that side data of more than 2 GiB (Arrow's 32-bit offsets) still reads.
    """
    pieces, lengths = [], []
    for chunk in side.column(SIGNATURE).cast(pa.binary()).chunks:
        if chunk.null_count:
            raise ValueError(
                "dedup_minhash: the side data holds a null signature; delete the step's keys and rerun"
            )
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
        lengths.append(np.diff(offsets).astype(np.int64))
        pieces.append(np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0] : offsets[-1]])
    sizes = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    odd = np.flatnonzero((sizes % 4 != 0) | (sizes == 0))
    if len(odd):
        raise ValueError(
            f"dedup_minhash: document {side.column(ID)[int(odd[0])].as_py()!r} has a {sizes[odd[0]]}-byte "
            "signature, not a whole number of 32-bit values; delete the step's keys and rerun"
        )
    data = np.concatenate(pieces).view("<u4") if pieces else np.zeros(0, np.uint32)
    counts = sizes // 4
    return data, np.cumsum(counts) - counts, counts


def _signature_matrix(side: pa.Table) -> np.ndarray:
    """The side table's signatures as a uint32 [documents, num_perm] matrix (all must be equally long)."""
    data, _, counts = _side_values(side)
    if len(counts) == 0:
        return np.zeros((0, 0), np.uint32)
    odd = np.flatnonzero(counts != counts[0])
    if len(odd):
        raise ValueError(
            f"dedup_minhash: document {side.column(ID)[int(odd[0])].as_py()!r} has {counts[odd[0]]} signature "
            f"values where others have {counts[0]}; keys of different stage versions or settings were mixed, "
            "delete the step's keys and rerun"
        )
    return data.reshape(len(counts), int(counts[0]))


def _candidate_rows(edges: pa.Table, side: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in `side` of both documents of every candidate pair."""
    known = side.column(ID).combine_chunks()
    return (
        _row_of(edges.column(ID).cast(known.type), known, "document"),
        _row_of(edges.column(DUPLICATE_OF).cast(known.type), known, "document"),
    )


def _row_of(ids: pa.ChunkedArray, known: pa.Array, what: str) -> np.ndarray:
    """Positions of `ids` among `known`; an id without a signature is an error that names it."""
    found = pc.index_in(ids, value_set=known)
    if found.null_count:
        missing = ids.filter(pc.is_null(found))[0].as_py()
        raise KeyError(
            f"dedup_minhash: {what} {missing!r} of a candidate pair has no signature in the side data"
        )
    return found.to_numpy()


@register
class DedupMinHashV1(GroupStage):
    """Drop near-duplicates: documents linked by shared LSH bands of their datasketch MinHash signatures."""

    name = "dedup_minhash"
    version = 1
    Params = MinHashParams
    requires = (schema.ID, schema.TEXT)
    drop_reason = "near_duplicate"

    def _setup(self) -> None:
        # The banding search (a few milliseconds, remembered per process) counts as set-up.
        self.params.banding()  # type: ignore[attr-defined]

    def signature(self, text: str) -> np.ndarray | None:
        """The MinHash signature of one text, or None for a text without words."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        grams = shingles(text, params.ngram_size, params.lowercase)
        if not grams:
            return None
        from datasketch import MinHash  # imported here: every process loads this module, few need SciPy

        minhash = MinHash(num_perm=params.num_perm, seed=params.seed)
        minhash.update_batch(grams)
        return minhash.hashvalues

    def confirm(self, edges: pa.Table, side: pa.Table | None) -> pa.Table:
        """Keep candidate pairs whose estimated Jaccard similarity reaches the threshold (all pairs at once)."""
        if side is None or edges.num_rows == 0:
            return edges
        left, right = _candidate_rows(edges, side)
        return self._keep(edges, matching_fraction(_signature_matrix(side), left, right))

    def _keep(self, edges: pa.Table, similarity: np.ndarray) -> pa.Table:
        """The edges whose estimated similarity reaches the threshold, counted in the stats."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        keep = similarity >= params.threshold
        self.stats.incr("dedup_minhash.candidates", edges.num_rows)
        self.stats.incr("dedup_minhash.confirmed", int(np.count_nonzero(keep)))
        return edges.filter(pa.array(keep, pa.bool_()))

    def keys(self, batch: pa.RecordBatch) -> pa.Table:
        """One key per LSH band per document: band index plus a digest of the band's hash values."""
        return self.keys_and_side_data(batch)[0]

    def keys_and_side_data(self, batch: pa.RecordBatch) -> tuple[pa.Table, pa.Table | None]:
        """Band keys, and (when verifying) each document's signature for `confirm`, from one MinHash pass."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        bands, rows = params.banding()
        keys: list[bytes] = []
        key_ids: list[str] = []
        signature_ids: list[str] = []
        signatures: list[bytes] = []
        for doc_id, text in zip(batch.column(schema.ID).to_pylist(), _texts(batch), strict=True):
            hashvalues = self.signature(text)
            if hashvalues is None:
                self.stats.incr("dedup_minhash.no_shingles")
                continue
            packed = hashvalues.astype("<u4")
            for band in range(bands):
                chunk = packed[band * rows : (band + 1) * rows].tobytes()
                keys.append(struct.pack(">H", band) + hashlib.blake2b(chunk, digest_size=12).digest())
                key_ids.append(doc_id)
            if params.verify:
                signature_ids.append(doc_id)
                signatures.append(packed.tobytes())
        self.stats.incr("dedup_minhash.keys", len(keys))
        key_table = pa.table(
            {KEY: pa.array(keys, pa.binary()), ID: pa.array(key_ids, pa.string())}, schema=KEY_SCHEMA
        )
        if not params.verify:
            return key_table, None
        side = pa.table(
            {ID: pa.array(signature_ids, pa.string()), SIGNATURE: pa.array(signatures, pa.binary())}
        )
        return key_table, side


@register
class DedupMinHash(DedupMinHashV1):
    """Drop near-duplicates found by MinHash LSH, with signatures computed a whole batch at a time in numpy.

    Keys are a 2-byte big-endian band index followed by the band's identity: its raw 32-bit values when a
    band holds at most four, else a 16-byte hash of them (`minhash.band_keys`).

    Candidates are verified on a finer sketch than the banding signature: each document's
    `SKETCH_PER_PERM * num_perm` smallest distinct shingle values (`minhash.bottom_k`, little-endian uint32
    in the side data's `signature` column). For documents of up to that many shingles the check is their
    exact Jaccard similarity; for longer ones an estimate from at least that many values of the pair's union
    (v1 compares `num_perm` minima, whose spread near a 0.8 threshold is about 0.035 and so misses or admits
    pairs a few points from it).
    """

    version = 2
    SKETCH_PER_PERM: ClassVar[int] = 4

    def __init__(self, params: StageParams | None = None) -> None:
        super().__init__(params)
        settings: MinHashParams = self.params  # type: ignore[assignment]
        self.hasher = MinHasher(settings.num_perm, settings.ngram_size, settings.lowercase, settings.seed)
        self.sketch_size = self.SKETCH_PER_PERM * settings.num_perm

    def _setup(self) -> None:
        super()._setup()
        char_table(self.hasher.lowercase)  # built once per process (about 0.3 s), before the first batch

    def signature(self, text: str) -> np.ndarray | None:
        """The MinHash signature of one text (uint32 values), or None for a text without words."""
        signatures, present = self.hasher.signatures([text])
        return signatures[0] if present[0] else None

    def confirm(self, edges: pa.Table, side: pa.Table | None) -> pa.Table:
        """Keep candidate pairs whose sketches put their Jaccard similarity at the threshold or above."""
        if side is None or edges.num_rows == 0:
            return edges
        left, right = _candidate_rows(edges, side)
        values, starts, counts = _side_values(side)
        oversized = np.flatnonzero(counts > self.sketch_size)
        if len(oversized):
            raise ValueError(
                f"dedup_minhash: document {side.column(ID)[int(oversized[0])].as_py()!r} has a sketch of "
                f"{counts[oversized[0]]} values, more than {self.sketch_size}; keys made with other settings "
                "were mixed in, delete the step's keys and rerun"
            )
        return self._keep(edges, sketch_similarity(values, starts, counts, self.sketch_size, left, right))

    def keys_and_side_data(self, batch: pa.RecordBatch) -> tuple[pa.Table, pa.Table | None]:
        """Band keys and (when verifying) sketches for the whole batch, from one vectorized pass."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        bands, rows = params.banding()
        sketch_size = self.sketch_size if params.verify else 0
        signatures, counts, sketches, sketch_counts = self.hasher.signatures_and_sketches(
            _texts(batch), sketch_size
        )
        kept = np.flatnonzero(counts)
        if len(kept) < batch.num_rows:
            self.stats.incr("dedup_minhash.no_shingles", batch.num_rows - len(kept))
        ids = batch.column(schema.ID)
        keys = _fixed_width_binary(band_keys(signatures[kept], bands, rows))
        self.stats.incr("dedup_minhash.keys", len(keys))
        key_table = pa.table({KEY: keys, ID: ids.take(pa.array(np.repeat(kept, bands)))}, schema=KEY_SCHEMA)
        if not params.verify:
            return key_table, None
        sketch_column = _binary_column(sketches, sketch_counts[kept])
        return key_table, pa.table({ID: ids.take(pa.array(kept)), SIGNATURE: sketch_column})
