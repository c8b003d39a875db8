"""Exact and MinHash dedup keys, resolved through the shared grouping into duplicate decisions."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from corpusmill.core import schema
from corpusmill.core.grouping import duplicate_decisions, star_edges, unique_edges
from corpusmill.filters.dedup import DedupExact, DedupMinHash, DedupMinHashV1, MinHashParams, shingles

MINHASH_VERSIONS = pytest.mark.parametrize("minhash", [DedupMinHashV1, DedupMinHash], ids=["v1", "v2"])

WORDS = [
    "river",
    "mountain",
    "harbor",
    "lantern",
    "orchard",
    "meadow",
    "violin",
    "garden",
    "market",
    "bridge",
    "candle",
    "window",
    "forest",
    "engine",
    "pepper",
    "silver",
    "ladder",
    "planet",
    "thunder",
    "marble",
    "canyon",
    "feather",
    "rocket",
    "saddle",
    "pillow",
    "butter",
    "copper",
    "island",
]


def _article(rng: random.Random, n: int = 300) -> str:
    return " ".join(rng.choice(WORDS) + ("." if rng.random() < 0.1 else "") for _ in range(n))


def _batch(docs: dict[str, str]) -> pa.RecordBatch:
    return schema.reader_batch([{"id": i, "text": t} for i, t in docs.items()])


def _decisions(stage, docs: dict[str, str]) -> dict[str, str]:
    keys = stage.keys(_batch(docs))
    table = duplicate_decisions(star_edges(keys)).to_pydict()
    return dict(zip(table["id"], table["duplicate_of"], strict=True))


def test_exact_dedup_normalises_whitespace_only() -> None:
    docs = {
        "b": "The cat sat.\n\nOn the mat.",
        "a": "The cat  sat. On the\tmat.",
        "c": "the cat sat. on the mat.",
        "d": "Something else entirely.",
    }
    assert _decisions(DedupExact(), docs) == {"b": "a"}
    assert _decisions(DedupExact(DedupExact.Params(lowercase=True)), docs) == {"b": "a", "c": "a"}


@MINHASH_VERSIONS
def test_minhash_finds_near_duplicates_and_spares_distinct_texts(minhash: type[DedupMinHashV1]) -> None:
    rng = random.Random(11)
    original = _article(rng)
    words = original.split()
    edited = words.copy()
    for position in (40, 160, 250):
        edited[position] = "zeppelin"
    docs = {
        "doc-3": original,
        "doc-1": " ".join(edited),
        "doc-2": _article(rng),
        "doc-4": " ".join(words[:-8]),
    }
    assert _decisions(minhash(), docs) == {"doc-3": "doc-1", "doc-4": "doc-1"}


@MINHASH_VERSIONS
def test_minhash_keys_are_one_per_band_and_deterministic(minhash: type[DedupMinHashV1]) -> None:
    stage = minhash(MinHashParams(threshold=0.7, num_perm=64))
    bands, rows = stage.params.banding()
    assert bands * rows <= 64
    docs = {"x": _article(random.Random(1)), "empty": "  ... !!! "}
    keys = stage.keys(_batch(docs))
    assert keys.num_rows == bands
    assert set(keys.column("id").to_pylist()) == {"x"}
    assert stage.keys(_batch(docs)).equals(keys)
    assert stage.take_stats().counters["dedup_minhash.no_shingles"] == 2


def test_shingles_of_short_text_is_the_whole_text() -> None:
    assert shingles("Hello, World", 5, True) == [b"hello world"]
    assert len(shingles("a b c d e f", 5, True)) == 2


def _resolve_with_confirmation(stage: DedupMinHashV1, docs: dict[str, str]) -> dict[str, str]:
    keys, side = stage.keys_and_side_data(_batch(docs))
    edges = stage.confirm(unique_edges(star_edges(keys)), side)
    table = duplicate_decisions(edges).to_pydict()
    return dict(zip(table["id"], table["duplicate_of"], strict=True))


@MINHASH_VERSIONS
def test_verification_rejects_candidates_below_the_threshold(minhash: type[DedupMinHashV1]) -> None:
    rng = random.Random(4)
    words = _article(rng).split()
    # Every 20th word changed: about 0.6 estimated Jaccard, a candidate under wide banding but below 0.8.
    loose = [("zeppelin" + str(i)) if i % 20 == 0 else w for i, w in enumerate(words)]
    close = [("zeppelin" + str(i)) if i % 150 == 0 else w for i, w in enumerate(words)]
    docs = {"a": " ".join(words), "b": " ".join(loose), "c": " ".join(close)}
    wide = {"threshold": 0.8, "bands": 32, "rows": 4}
    unverified = minhash(MinHashParams(**wide, verify=False))
    assert _resolve_with_confirmation(unverified, docs) == {"b": "a", "c": "a"}
    verified = minhash(MinHashParams(**wide))
    assert _resolve_with_confirmation(verified, docs) == {"c": "a"}
    counters = verified.take_stats().counters
    assert counters["dedup_minhash.candidates"] == 2
    assert counters["dedup_minhash.confirmed"] == 1


def test_default_banding_favours_recall_near_the_threshold() -> None:
    bands, rows = MinHashParams().banding()
    assert 1 - (1 - 0.85**rows) ** bands > 0.95
