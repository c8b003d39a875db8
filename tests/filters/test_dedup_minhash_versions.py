"""`dedup_minhash` v2 (vectorized) on real pages and edge cases; v1 (datasketch) kept byte for byte."""

from __future__ import annotations

import hashlib
import json
import random
import re
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from corpusmill.core import schema
from corpusmill.core.grouping import EDGE_SCHEMA, KEY_SCHEMA, duplicate_decisions, star_edges, unique_edges
from corpusmill.core.stage import resolve_stage
from corpusmill.filters import dedup
from corpusmill.filters.dedup import DedupMinHash, DedupMinHashV1, MinHashParams, shingles
from corpusmill.filters.minhash import shingle_values

VERSIONS = [DedupMinHashV1, DedupMinHash]


def _wcxb_texts(shared_data: Path, count: int, min_words: int = 0) -> list[str]:
    texts = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8")).get("ground_truth") or {}
        text = truth.get("main_content") or ""
        if text.strip() and len(text.split()) >= min_words:
            texts.append(text)
        if len(texts) == count:
            return texts
    raise AssertionError(f"fewer than {count} WCXB texts in {shared_data}")


def _batch(docs: dict[str, str | None]) -> pa.RecordBatch:
    return schema.reader_batch([{"id": i, "text": t} for i, t in docs.items()])


def _decisions(stage: DedupMinHashV1, docs: dict[str, str | None]) -> dict[str, str]:
    keys, side = stage.keys_and_side_data(_batch(docs))
    table = duplicate_decisions(stage.confirm(unique_edges(star_edges(keys)), side)).to_pydict()
    return dict(zip(table["id"], table["duplicate_of"], strict=True))


def _grams(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))}


def _jaccard(left: str, right: str) -> float:
    a, b = _grams(left), _grams(right)
    return len(a & b) / len(a | b)


def test_bare_name_resolves_to_v2_and_v1_stays_selectable() -> None:
    assert resolve_stage("dedup_minhash") is DedupMinHash
    assert resolve_stage("dedup_minhash_v2") is DedupMinHash
    assert resolve_stage("dedup_minhash_v1") is DedupMinHashV1


def _key_digest(stage: DedupMinHashV1, batch: pa.RecordBatch) -> str:
    keys, side = stage.keys_and_side_data(batch)
    digest = hashlib.sha256()
    for key, doc_id in zip(keys.column("key").to_pylist(), keys.column("id").to_pylist(), strict=True):
        digest.update(key + doc_id.encode() + b"\0")
    assert side is not None
    for doc_id, signature in zip(
        side.column("id").to_pylist(), side.column("signature").to_pylist(), strict=True
    ):
        digest.update(doc_id.encode() + signature)
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("params", "released"),
    [
        ({}, "4dcd6c118ebdf8ad2d582952cbe5bac697c92fa425e4b0464f8b9935fb9f5ea9"),
        (
            {"threshold": 0.7, "num_perm": 64, "ngram_size": 3, "lowercase": False, "seed": 7},
            "f12fa5cfe2d73ee069c748c7273fac75f98ce3972a9b889fe02ffdb0224363a2",
        ),
    ],
)
def test_v1_keys_and_signatures_are_those_of_the_released_stage(
    shared_data: Path, params: dict[str, object], released: str
) -> None:
    # The digests were taken from dedup_minhash_v1 as released, before v2 existed: a recipe pinned to v1
    # must keep grouping exactly the same documents.
    docs: dict[str, str | None] = {f"wcxb-{i:03d}": t for i, t in enumerate(_wcxb_texts(shared_data, 40))}
    docs.update({"empty": "", "none": None, "short": "Größe ÜBER alles"})
    assert _key_digest(DedupMinHashV1(MinHashParams(**params)), _batch(docs)) == released


def test_v1_keys_are_datasketch_bands_under_blake2b(shared_data: Path) -> None:
    text = _wcxb_texts(shared_data, 1)[0]
    stage = DedupMinHashV1(MinHashParams(threshold=0.9, num_perm=32))
    bands, rows = stage.params.banding()
    minhash = MinHash(num_perm=32, seed=1)
    minhash.update_batch(shingles(text, 5, True))
    packed = minhash.hashvalues.astype("<u4")
    expected = [
        struct.pack(">H", band)
        + hashlib.blake2b(packed[band * rows : (band + 1) * rows].tobytes(), digest_size=12).digest()
        for band in range(bands)
    ]
    assert stage.keys(_batch({"x": text})).column("key").to_pylist() == expected


def test_v2_finds_edited_copies_of_real_pages_and_nothing_else(shared_data: Path) -> None:
    rng = random.Random(8)
    originals = _wcxb_texts(shared_data, 90, min_words=120)
    docs: dict[str, str | None] = {f"page-{i:03d}": text for i, text in enumerate(originals)}
    planted: dict[str, str] = {}
    for i, text in enumerate(originals):
        words = text.split()
        if i % 3 == 0:  # a few words replaced
            for position in rng.sample(range(len(words)), max(1, len(words) // 200)):
                words[position] = "zyxwv"
        elif i % 3 == 1:  # the tail cut off
            words = words[: len(words) - len(words) // 40]
        else:  # rewritten: every 16th word replaced, about 0.5 Jaccard similarity, below the threshold
            words = [w if k % 16 else f"other{k}" for k, w in enumerate(words)]
        docs[f"copy-{i:03d}"] = " ".join(words)
        planted[f"copy-{i:03d}"] = f"page-{i:03d}"
    decisions = _decisions(DedupMinHash(), docs)
    linked_pairs = 0
    for copy, page in planted.items():
        similarity = _jaccard(docs[page] or "", docs[copy] or "")
        linked = decisions.get(copy, copy) == decisions.get(page, page)
        linked_pairs += linked
        if similarity >= 0.9:
            assert linked, (copy, similarity)
        elif similarity <= 0.6:
            assert not linked, (copy, similarity)
    assert linked_pairs >= 60  # two thirds of the 90 planted copies are close ones
    # Pages of the corpus are only linked to one another when their own texts are that similar.
    for doc_id, survivor in decisions.items():
        if doc_id.startswith("page-") and survivor.startswith("page-"):
            assert _jaccard(docs[doc_id] or "", docs[survivor] or "") > 0.6


@pytest.mark.parametrize("stage_class", VERSIONS)
def test_short_empty_and_wordless_texts(stage_class: type[DedupMinHashV1]) -> None:
    docs: dict[str, str | None] = {
        "a-empty": "",
        "b-none": None,
        "c-punct": "  ... !!! — ",
        "d-hello": "hello",
        "e-HELLO": "HELLO!",
        "f-pair": "hello world",
        "g-pair": "Hello, World!",
        "h-four": "one two three four",
    }
    stage = stage_class()
    keys, side = stage.keys_and_side_data(_batch(docs))
    assert set(keys.column("id").to_pylist()) == {"d-hello", "e-HELLO", "f-pair", "g-pair", "h-four"}
    assert side is not None and sorted(side.column("id").to_pylist()) == [
        "d-hello",
        "e-HELLO",
        "f-pair",
        "g-pair",
        "h-four",
    ]
    assert stage.take_stats().counters["dedup_minhash.no_shingles"] == 3
    assert _decisions(stage_class(), docs) == {"e-HELLO": "d-hello", "g-pair": "f-pair"}
    only_empty = stage_class().keys_and_side_data(_batch({"x": "", "y": None}))
    assert only_empty[0].num_rows == 0 and only_empty[0].schema == KEY_SCHEMA
    assert only_empty[1] is not None and only_empty[1].num_rows == 0


def test_v2_keys_and_side_data_have_the_documented_shape() -> None:
    text = " ".join(f"word{i % 97}" for i in range(300))  # 97 distinct 5-grams
    long_text = " ".join(f"w{i}" for i in range(700))  # 696 distinct 5-grams: more than the sketch holds
    for params, width in (({}, 18), ({"bands": 16, "rows": 4}, 18), ({"bands": 32, "rows": 2}, 10)):
        stage = DedupMinHash(MinHashParams(**params))
        bands, _ = stage.params.banding()
        keys, side = stage.keys_and_side_data(_batch({"b": text, "a": long_text}))
        assert keys.schema == KEY_SCHEMA
        assert keys.column("id").to_pylist() == ["b"] * bands + ["a"] * bands
        assert {len(key) for key in keys.column("key").to_pylist()} == {width}
        band_prefixes = [key[:2] for key in keys.column("key").to_pylist()[:bands]]
        assert band_prefixes == [struct.pack(">H", b) for b in range(bands)]
        assert side is not None and side.schema.names == ["id", "signature"]
        assert side.column("signature").type == pa.binary()
        # The side data holds each document's 4 * num_perm smallest distinct shingle values, ascending.
        for row, source in enumerate((text, long_text)):
            values = sorted(set(shingle_values([source], 5, True)[0].tolist()))[: 4 * 128]
            assert side.column("signature")[row].as_py() == struct.pack(f"<{len(values)}I", *values)
    assert DedupMinHash(MinHashParams(verify=False)).keys_and_side_data(_batch({"a": text}))[1] is None


def _vocabulary_text(rng: random.Random, vocabulary: list[str], length: int) -> list[str]:
    return [rng.choice(vocabulary) for _ in range(length)]


def test_v2_finds_near_duplicates_in_cyrillic_and_chinese() -> None:
    rng = random.Random(3)
    russian = ["данные", "город", "река", "Москва", "книга", "время", "работа", "школа", "дорога", "окно"]
    chinese = ["东京", "数据", "城市", "河流", "书", "时间", "工作", "学校", "道路", "窗户"]
    docs: dict[str, str | None] = {}
    for name, vocabulary in (("ru", russian), ("zh", chinese)):
        words = _vocabulary_text(rng, vocabulary, 400)
        edited = words.copy()
        edited[100] = edited[300] = "ЗАМЕНА" if name == "ru" else "替换"
        docs[f"{name}-1"] = " ".join(words)
        docs[f"{name}-2"] = "，".join(edited) if name == "zh" else " ".join(w.upper() for w in edited)
        docs[f"{name}-3"] = " ".join(_vocabulary_text(rng, vocabulary, 400))
    assert _decisions(DedupMinHash(), docs) == {"ru-2": "ru-1", "zh-2": "zh-1"}


def test_v1_confirm_compares_every_pair_like_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    ids = [f"doc-{i:03d}" for i in range(60)]
    signatures = rng.integers(0, 3, size=(60, 16), dtype=np.uint32)
    side_rows = [(doc_id, row.astype("<u4").tobytes()) for doc_id, row in zip(ids, signatures, strict=True)]
    # Side data arrives as several chunks (one per part file).
    side = pa.concat_tables(
        [
            pa.table({"id": [r[0] for r in part], "signature": [r[1] for r in part]})
            for part in (side_rows[:25], side_rows[25:])
        ]
    )
    pairs = [(ids[int(i)], ids[int(j)]) for i, j in rng.integers(0, 60, size=(500, 2)) if i != j]
    edges = pa.table({"id": [p[0] for p in pairs], "duplicate_of": [p[1] for p in pairs]}, schema=EDGE_SCHEMA)
    stage = DedupMinHashV1(MinHashParams(threshold=0.5))
    kept = stage.confirm(edges, side)
    by_id = dict(side_rows)
    expected = [
        p
        for p in pairs
        if np.count_nonzero(np.frombuffer(by_id[p[0]], "<u4") == np.frombuffer(by_id[p[1]], "<u4")) / 16
        >= 0.5
    ]
    assert (
        list(zip(kept.column("id").to_pylist(), kept.column("duplicate_of").to_pylist(), strict=True))
        == expected
    )
    counters = stage.take_stats().counters
    assert counters["dedup_minhash.candidates"] == len(pairs)
    assert counters["dedup_minhash.confirmed"] == len(expected)


def test_v2_confirm_keeps_pairs_by_their_exact_jaccard_similarity() -> None:
    rng = random.Random(4)
    base = [f"w{rng.randrange(10**6)}" for _ in range(250)]
    docs: dict[str, str | None] = {"a": " ".join(base)}
    for name, changed in (("b", 3), ("c", 5), ("d", 6), ("e", 8)):  # Jaccard 0.88, 0.81, 0.78, 0.72
        words = base.copy()
        for position in range(10, 10 + 6 * changed, 6):
            words[position] = f"x{position}"
        docs[name] = " ".join(words)
    stage = DedupMinHash(MinHashParams(threshold=0.8))
    _, side = stage.keys_and_side_data(_batch(docs))
    pairs = [("a", name) for name in "bcde"]
    edges = pa.table({"id": [p[0] for p in pairs], "duplicate_of": [p[1] for p in pairs]}, schema=EDGE_SCHEMA)
    kept = stage.confirm(edges, side).column("duplicate_of").to_pylist()
    assert kept == [name for name in "bcde" if _jaccard(docs["a"] or "", docs[name] or "") >= 0.8]
    assert kept == ["b", "c"]  # the edits straddle the threshold


def test_confirm_names_the_document_whose_signature_is_missing_or_malformed() -> None:
    edges = pa.table({"id": ["a"], "duplicate_of": ["b"]}, schema=EDGE_SCHEMA)
    good = bytes(64)
    for stage in (DedupMinHashV1(), DedupMinHash()):
        with pytest.raises(KeyError, match="'b'"):
            stage.confirm(edges, pa.table({"id": ["a"], "signature": [good]}))
        with pytest.raises(ValueError, match="'b'"):
            stage.confirm(edges, pa.table({"id": ["a", "b"], "signature": [good, good[:62]]}))
    with pytest.raises(ValueError, match="'b'"):  # v1 signatures all have num_perm values
        DedupMinHashV1().confirm(edges, pa.table({"id": ["a", "b"], "signature": [good, good[:60]]}))
    with pytest.raises(ValueError, match="'b'"):  # v2 sketches hold at most 4 * num_perm values
        DedupMinHash().confirm(edges, pa.table({"id": ["a", "b"], "signature": [good, bytes(4 * 513)]}))


def test_v2_side_data_splits_into_chunks_under_arrows_offset_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(9)
    base = [f"w{rng.randrange(10**6)}" for _ in range(200)]
    docs: dict[str, str | None] = {
        f"d{i}": " ".join(base[i:] + base[:i] if i % 2 else base) for i in range(9)
    }
    stage = DedupMinHash()
    whole = stage.keys_and_side_data(_batch(docs))[1]
    monkeypatch.setattr(dedup, "_MAX_CHUNK_VALUES", 450)  # a little more than two sketches of 196 values
    split = stage.keys_and_side_data(_batch(docs))[1]
    assert whole is not None and split is not None
    assert split.column("signature").num_chunks == 5 and whole.column("signature").num_chunks == 1
    assert split.column("signature").to_pylist() == whole.column("signature").to_pylist()
    pairs = [(f"d{i}", f"d{j}") for i in range(9) for j in range(i + 1, 9)]
    edges = pa.table({"id": [p[0] for p in pairs], "duplicate_of": [p[1] for p in pairs]}, schema=EDGE_SCHEMA)
    assert stage.confirm(edges, split).equals(stage.confirm(edges, whole))
