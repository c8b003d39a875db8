"""Exact and near-duplicate removal as group stages.

Both stages only say which key each document falls under; grouping and connected components are shared
(`core.grouping`), and the runner drops every document that is not the smallest id of its component.
- `dedup_exact`: the key is a hash of the (whitespace-normalised) text.
- `dedup_minhash`: datasketch MinHash signatures over word n-gram shingles, cut into LSH bands; each band is
  a key, so two documents sharing any band are candidates, and transitive candidates form one component.
  Band count and width come from datasketch's own optimiser for the requested Jaccard threshold.
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
from corpusmill.core.grouping import ID, KEY, KEY_SCHEMA
from corpusmill.core.stage import GroupStage, StageParams, register

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

    @model_validator(mode="after")
    def _bands_fit(self) -> MinHashParams:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they follow from threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def banding(self) -> tuple[int, int]:
        """(bands, rows) for this threshold, balancing false positives and negatives equally."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)


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

    def keys(self, batch: pa.RecordBatch) -> pa.Table:
        """One key per LSH band per document: band index plus a digest of the band's hash values."""
        params: MinHashParams = self.params  # type: ignore[assignment]
        bands, rows = params.banding()
        keys: list[bytes] = []
        ids: list[str] = []
        for doc_id, text in zip(batch.column(schema.ID).to_pylist(), _texts(batch), strict=True):
            hashvalues = self.signature(text)
            if hashvalues is None:
                self.stats.incr("dedup_minhash.no_shingles")
                continue
            for band in range(bands):
                chunk = hashvalues[band * rows : (band + 1) * rows].astype("<u4").tobytes()
                keys.append(struct.pack(">H", band) + hashlib.blake2b(chunk, digest_size=12).digest())
                ids.append(doc_id)
        self.stats.incr("dedup_minhash.keys", len(keys))
        return pa.table({KEY: pa.array(keys, pa.binary()), ID: pa.array(ids, pa.string())}, schema=KEY_SCHEMA)
