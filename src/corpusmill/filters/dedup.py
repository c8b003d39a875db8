"""Exact and near-duplicate removal as group stages.

Both stages only say which key each document falls under; grouping and connected components are shared
(`core.grouping`), and the runner drops every document that is not the smallest id of its component.
- `dedup_exact`: the key is a hash of the (whitespace-normalised) text.
- `dedup_minhash`: datasketch MinHash signatures over word n-gram shingles, cut into LSH bands; each band is
  a key, so two documents sharing any band are candidates. Band count and width come from datasketch's own
  optimiser, weighted towards recall; each candidate pair is then verified by the Jaccard similarity its
  signatures estimate, and confirmed pairs form connected components.
"""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
import pyarrow as pa
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from pydantic import Field, model_validator

from corpusmill.core import schema
from corpusmill.core.grouping import DUPLICATE_OF, ID, KEY, KEY_SCHEMA
from corpusmill.core.stage import GroupStage, StageParams, register

SIGNATURE = "signature"
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
        return _optimal_param(self.threshold, self.num_perm, 1.0 - self.recall_weight, self.recall_weight)


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


@register
class DedupMinHash(GroupStage):
    """Drop near-duplicates: documents linked by shared LSH bands of their MinHash signatures."""

    name = "dedup_minhash"
    Params = MinHashParams
    requires = (schema.ID, schema.TEXT)
    drop_reason = "near_duplicate"

    def signature(self, text: str) -> np.ndarray | None:
        """The MinHash signature of one text, or None for a text without words."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        grams = shingles(text, params.ngram_size, params.lowercase)
        if not grams:
            return None
        minhash = MinHash(num_perm=params.num_perm, seed=params.seed)
        minhash.update_batch(grams)
        return minhash.hashvalues

    def confirm(self, edges: pa.Table, side: pa.Table | None) -> pa.Table:
        """Keep candidate pairs whose estimated Jaccard similarity reaches the threshold."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        if side is None or edges.num_rows == 0:
            return edges
        signature_of = dict(zip(side.column(ID).to_pylist(), side.column(SIGNATURE).to_pylist(), strict=True))
        keep = []
        for left, right in zip(
            edges.column(ID).to_pylist(), edges.column(DUPLICATE_OF).to_pylist(), strict=True
        ):
            a = np.frombuffer(signature_of[left], dtype="<u4")
            b = np.frombuffer(signature_of[right], dtype="<u4")
            similarity = float(np.count_nonzero(a == b)) / len(a)
            keep.append(similarity >= params.threshold)
        self.stats.incr("dedup_minhash.candidates", edges.num_rows)
        self.stats.incr("dedup_minhash.confirmed", sum(keep))
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
