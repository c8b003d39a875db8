"""Vectorized MinHash against a per-word, per-shingle Python reference, and its statistics and determinism."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpusmill.filters import minhash
from corpusmill.filters.minhash import (
    MinHasher,
    band_keys,
    bottom_k,
    char_table,
    matching_fraction,
    shingle_values,
    sketch_similarity,
)

MASK = (1 << 64) - 1


def _fmix(value: int) -> int:
    value ^= value >> 33
    value = value * 0xFF51AFD7ED558CCD & MASK
    value ^= value >> 33
    value = value * 0xC4CEB9FE1A85EC53 & MASK
    return value ^ value >> 33


def _reference_word(word: str) -> int:
    total = sum(ord(char) * pow(minhash._BASE, j, 1 << 64) for j, char in enumerate(word)) & MASK
    return _fmix(total ^ len(word))


def _reference_shingles(text: str, ngram_size: int) -> list[int]:
    """The documented shingle values of a text, one word and one n-gram at a time."""
    words = [_reference_word(word) for word in re.findall(r"\w+", text.lower())]
    multipliers = [int(m) for m in minhash._ngram_multipliers(ngram_size)]
    if not words:
        return []
    spans = (
        [words]
        if len(words) < ngram_size
        else [words[i : i + ngram_size] for i in range(len(words) - ngram_size + 1)]
    )
    return [_fmix(sum(w * m for w, m in zip(span, multipliers, strict=False)) & MASK) >> 32 for span in spans]


def _reference_signature(values: list[int], hasher: MinHasher) -> list[int]:
    pairs = zip(hasher.multipliers.tolist(), hasher.offsets.tolist(), strict=True)
    return [min((a * x + b) & MASK for x in values) >> 32 for a, b in pairs]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocabulary = ["Über", "straße", "naïve", "東京", "данные", "river", "x_1", "42", "café", "ÉCOLE", "a"]
    texts = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 4, 5, 6, 30, 200])
        words = [rng.choice(vocabulary) + rng.choice(["", "s", "ing"]) for _ in range(length)]
        separators = [rng.choice([" ", ", ", "\n", " — ", "!? ", "\u00a0", " 🙂 "]) for _ in words]
        texts.append("".join(w + s for w, s in zip(words, separators, strict=True)))
    return texts


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force several hashing windows, permutation blocks and text groups per call."""
    monkeypatch.setattr(minhash, "_WINDOW", 24)
    monkeypatch.setattr(minhash, "_BLOCK_VALUES", 1)  # the floor: 256 shingles per block
    monkeypatch.setattr(minhash, "_GROUP_CHARS", 700)


@pytest.mark.parametrize("ngram_size", [1, 3, 5])
def test_shingle_values_follow_the_per_word_definition(ngram_size: int, small_blocks: None) -> None:
    texts = [*_texts(60, seed=ngram_size), "", "...", "one", "a" * 100 + " b"]  # a word longer than a window
    values, counts = shingle_values(texts, ngram_size, lowercase=True)
    expected = [_reference_shingles(text, ngram_size) for text in texts]
    assert counts.tolist() == [len(e) for e in expected]
    assert values.tolist() == [v for e in expected for v in e]


def test_signatures_follow_the_per_shingle_definition(small_blocks: None) -> None:
    hasher = MinHasher(num_perm=16, ngram_size=3, lowercase=True, seed=5)
    texts = _texts(80, seed=9)  # long texts span 256-shingle blocks; short ones share one block
    signatures, present = hasher.signatures(texts)
    for text, row, has_words in zip(texts, signatures.tolist(), present.tolist(), strict=True):
        values = _reference_shingles(text, 3)
        assert has_words == bool(values)
        assert row == (_reference_signature(values, hasher) if values else [0] * 16)


def test_word_table_is_the_regex_word_class() -> None:
    table, plain = char_table(True), char_table(False)
    for code in [*range(0x3000), *range(0x1F600, 0x1F650), 0x4E2D, 0x0416, 0x00DF, 0x0130, 0x1E9E]:
        char = chr(code)
        is_word = re.fullmatch(r"\w", char) is not None
        lowered = char.lower()
        assert plain[code] == (code if is_word else 0), hex(code)
        assert table[code] == ((ord(lowered) if len(lowered) == 1 else code) if is_word else 0), hex(code)


def test_unicode_words_split_like_the_regex_and_case_folds() -> None:
    values, counts = shingle_values(["Straße—ÜBER  東京🙂данные", "straße über 東京 ДАННЫЕ"], 1, True)
    assert counts.tolist() == [4, 4]
    assert values[:4].tolist() == values[4:].tolist()
    cased, _ = shingle_values(["ÜBER", "über"], 1, False)
    assert cased[0] != cased[1]
    # A lone surrogate (possible in a Python str, never in Arrow text) is a separator, not an error.
    assert shingle_values(["ab\ud800cd"], 1, True)[1].tolist() == [2]


def _jaccard_pair(rng: random.Random, shared: int, own: int) -> tuple[str, str, float]:
    """Two texts of distinct single-word shingles with a known Jaccard similarity."""
    tokens = [f"t{rng.getrandbits(48):x}" for _ in range(shared + 2 * own)]
    common, left, right = tokens[:shared], tokens[shared : shared + own], tokens[shared + own :]
    return " ".join(common + left), " ".join(right + common), shared / (shared + 2 * own)


def test_estimates_match_true_jaccard_within_binomial_bounds() -> None:
    num_perm = 256
    hasher = MinHasher(num_perm=num_perm, ngram_size=1, lowercase=True, seed=3)
    rng = random.Random(12)
    pairs = [_jaccard_pair(rng, rng.randint(20, 400), rng.randint(10, 300)) for _ in range(150)]
    texts = [text for left, right, _ in pairs for text in (left, right)]
    signatures, _ = hasher.signatures(texts)
    index = np.arange(0, len(texts), 2)
    estimates = matching_fraction(signatures, index, index + 1)
    truth = np.array([j for _, _, j in pairs])
    sigma = np.sqrt(truth * (1 - truth) / num_perm)
    z = (estimates - truth) / sigma
    # Each estimate is Binomial(num_perm, J) / num_perm for a min-wise family: no pair beyond 5 sigma,
    # no bias beyond 4 standard errors of the mean, and a spread close to the binomial one.
    assert np.abs(z).max() < 5
    assert abs(z.mean()) < 4 / np.sqrt(len(z))
    assert 0.75 < z.std() < 1.25


def test_edited_copies_estimate_their_five_gram_jaccard() -> None:
    rng = random.Random(2)
    hasher = MinHasher(num_perm=128, ngram_size=5, lowercase=True, seed=1)
    for _ in range(20):
        words = [f"w{rng.randint(0, 5000)}" for _ in range(400)]
        edited = [f"e{i}" if rng.random() < 0.02 else word for i, word in enumerate(words)]
        grams = [{" ".join(ws[i : i + 5]) for i in range(len(ws) - 4)} for ws in (words, edited)]
        truth = len(grams[0] & grams[1]) / len(grams[0] | grams[1])
        signatures, _ = hasher.signatures([" ".join(words), " ".join(edited)])
        estimate = matching_fraction(signatures, np.array([0]), np.array([1]))[0]
        assert abs(estimate - truth) < 5 * np.sqrt(truth * (1 - truth) / 128)


def test_signatures_are_the_same_in_other_processes() -> None:
    texts = _texts(30, seed=4)
    digest = hashlib.sha256(MinHasher(64, 5, True, 11).signatures(texts)[0].tobytes()).hexdigest()
    code = (
        "import hashlib, json, sys; from corpusmill.filters.minhash import MinHasher; "
        "texts = json.loads(sys.stdin.read()); "
        "print(hashlib.sha256(MinHasher(64, 5, True, 11).signatures(texts)[0].tobytes()).hexdigest())"
    )
    for hash_seed in ("1", "977"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert result.stdout.strip() == digest


def test_seeds_give_different_permutations() -> None:
    texts = _texts(5, seed=1)
    first = MinHasher(32, 3, True, seed=1).signatures(texts)[0]
    assert np.array_equal(first, MinHasher(32, 3, True, seed=1).signatures(texts)[0])
    assert not np.array_equal(first, MinHasher(32, 3, True, seed=2).signatures(texts)[0])


def test_band_keys_hold_the_band_index_then_raw_values_or_a_wide_hash() -> None:
    signatures = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 9]], np.uint32)
    narrow = band_keys(signatures, bands=2, rows=4)
    assert narrow.shape == (4, 18)
    assert bytes(narrow[1]) == struct.pack(">H", 1) + struct.pack("<4I", 5, 6, 7, 8)
    assert bytes(narrow[0]) == bytes(narrow[2]) and bytes(narrow[1]) != bytes(narrow[3])
    wide_values = np.array([range(20), [*range(10), *range(10, 19), 99]], np.uint32)
    wide = band_keys(wide_values, bands=2, rows=10)
    assert wide.shape == (4, 18)
    assert [bytes(key[:2]) for key in wide] == [b"\0\0", b"\0\1"] * 2
    assert bytes(wide[0]) == bytes(wide[2])  # the first ten values agree
    assert bytes(wide[1]) != bytes(wide[3])  # the second band differs in its last value
    same_values = np.full((1, 20), 7, np.uint32)
    both = band_keys(same_values, bands=2, rows=10)
    assert bytes(both[0][2:]) == bytes(both[1][2:]) and bytes(both[0]) != bytes(both[1])


def test_matching_fraction_counts_equal_positions() -> None:
    rng = np.random.default_rng(0)
    signatures = rng.integers(0, 4, size=(50, 16), dtype=np.uint32)
    left, right = rng.integers(0, 50, 1000), rng.integers(0, 50, 1000)
    got = matching_fraction(signatures, left, right, chunk=64)
    expected = [
        sum(int(a == b) for a, b in zip(signatures[i], signatures[j], strict=True)) / 16
        for i, j in zip(left, right, strict=True)
    ]
    assert got.tolist() == expected


def test_bottom_k_keeps_each_documents_smallest_distinct_values() -> None:
    rng = random.Random(6)
    groups = [[rng.randrange(1 << 32) for _ in range(n)] for n in (0, 3, 40, 700, 1)]
    groups[2] += groups[2][:10]  # repeated shingles count once
    values = np.array([v for g in groups for v in g], np.uint32)
    sketch, counts = bottom_k(values, np.array([len(g) for g in groups]), size=32)
    expected = [sorted(set(g))[:32] for g in groups]
    assert counts.tolist() == [len(e) for e in expected]
    assert sketch.tolist() == [v for e in expected for v in e]


def _sketch_table(sets: list[set[int]], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sketches = [sorted(s)[:size] for s in sets]
    counts = np.array([len(s) for s in sketches])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.array([v for s in sketches for v in s], np.uint32), starts, counts


def _reference_estimate(a: set[int], b: set[int], size: int) -> float:
    """The documented rule, one pair at a time: compare every value below where either sketch was cut."""
    cut = [sorted(s)[size - 1] for s in (a, b) if len(s) >= size]
    tau = min(cut) if cut else (1 << 32) - 1
    low_a, low_b = {v for v in a if v <= tau}, {v for v in b if v <= tau}
    return len(low_a & low_b) / len(low_a | low_b)


def test_sketch_similarity_is_exact_for_small_sets_and_follows_the_rule_for_large_ones() -> None:
    rng = random.Random(7)
    size = 64
    sets, pairs = [], []
    for _ in range(120):
        shared = {rng.randrange(1 << 32) for _ in range(rng.randint(1, 150))}
        a = shared | {rng.randrange(1 << 32) for _ in range(rng.randint(0, 60))}
        b = shared | {rng.randrange(1 << 32) for _ in range(rng.randint(0, 60))}
        pairs.append((len(sets), len(sets) + 1))
        sets += [a, b]
    values, starts, counts = _sketch_table(sets, size)
    left, right = (np.array(side) for side in zip(*pairs, strict=True))
    got = sketch_similarity(values, starts, counts, size, left, right, chunk=16)
    for (i, j), estimate in zip(pairs, got.tolist(), strict=True):
        a, b = sets[i], sets[j]
        assert estimate == pytest.approx(_reference_estimate(a, b, size), abs=1e-12)
        if len(a) < size and len(b) < size:
            assert estimate == pytest.approx(len(a & b) / len(a | b), abs=1e-12)


def test_sketch_estimates_of_large_sets_are_unbiased_within_the_binomial_spread() -> None:
    rng = random.Random(8)
    size, errors, truths = 128, [], []
    sets, pairs = [], []
    for _ in range(200):
        shared = {rng.randrange(1 << 32) for _ in range(rng.randint(500, 2000))}
        own = rng.randint(20, 600)
        a = shared | {rng.randrange(1 << 32) for _ in range(own)}
        b = shared | {rng.randrange(1 << 32) for _ in range(own)}
        pairs.append((len(sets), len(sets) + 1))
        sets += [a, b]
        truths.append(len(a & b) / len(a | b))
    values, starts, counts = _sketch_table(sets, size)
    left, right = (np.array(side) for side in zip(*pairs, strict=True))
    estimates = sketch_similarity(values, starts, counts, size, left, right)
    truth = np.array(truths)
    errors = estimates - truth
    # At least `size` values of the union are compared, so the spread is at most the binomial one of `size`
    # draws (less, since they are drawn without replacement); the mean error is within 4 standard errors.
    sigma = np.sqrt(truth * (1 - truth) / size)
    assert np.abs(errors / sigma).max() < 5
    assert abs(errors.mean()) < 4 * sigma.mean() / np.sqrt(len(errors))
    assert (errors / sigma).std() < 1.1
