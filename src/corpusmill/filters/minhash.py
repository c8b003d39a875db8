"""Vectorized MinHash signatures: a whole batch of texts at once, with no Python call per word or shingle.

Hashing each shingle through `hashlib` and a per-document `MinHash` object spends most of its time in the
interpreter, not in hashing. Here every step is a numpy pass over a group of texts:

1. Words. The texts are joined by newlines and turned into one array of code points (UTF-32, or bytes when
   all ASCII). One table lookup maps each code point to 0 when it is not a word character and otherwise to
   itself, lowercased if asked (per character: a character whose lowercase is several characters, such as
   U+0130, stays as it is). The table is built from the `re` module's own `\\w`, so the words are exactly
   what `\\w+` finds; the newline separators keep words from running across texts.
2. Word hashes. A word's hash is the polynomial `sum(c_j * P**j)` over its code points, modulo 2**64, xor its
   length, then murmur3's 64-bit finaliser `fmix64`. With `P**i` and `P**-i` precomputed, a window of words
   costs one multiply and one cumulative sum per character, and per word one difference of prefix sums and
   one multiply by the inverse power of its start.
3. Shingles. A word n-gram's hash is `sum(w_{i+k} * M_k)` over its n word hashes (distinct odd multipliers
   keep it order-sensitive), finalised again; its top 32 bits are the shingle value. A text shorter than n
   words is one shingle of all its words; a text without words has none.
4. Permutations. Shingle value x goes through `num_perm` multiply-add-shift hashes,
   `((a_k * x + b_k) mod 2**64) >> 32` with random 64-bit `a_k, b_k` (Dietzfelbinger's strongly universal
   family for 32-bit keys). The shift is monotone, so the per-text minimum is taken over the 64-bit values
   (one `np.minimum.reduceat` per block of shingles) and shifted once. Blocks keep the (num_perm x shingles)
   array within the CPU cache.
5. Sketches. For verifying candidate pairs, `bottom_k` keeps each text's smallest distinct shingle values
   (one sort of (text, value) pairs per group), and `sketch_similarity` estimates a pair's Jaccard similarity
   from them: exactly when both texts have no more shingles than the sketch holds, otherwise from every value
   of the union below the point where either sketch was cut.

Every constant comes from BLAKE2b of a fixed label (and the seed), never from Python's salted `hash()` or a
numpy generator stream, so signatures are the same in every process, platform and numpy release. The word
table follows the Unicode database of the running Python, as `re` and `str.lower` do.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
# Code points per hashing window: the window's uint64 arrays stay within a typical L2 cache.
_WINDOW = 1 << 16
# Values per permutation block (num_perm x shingles, uint64): 4 MiB.
_BLOCK_VALUES = 1 << 19
# Characters per group of documents hashed together (bounds the per-character arrays of one group).
_GROUP_CHARS = 1 << 18
_EMPTY = np.zeros(0, np.uint64)


def _constant(label: str, index: int = 0) -> int:
    """A stable 64-bit constant derived from a label: the same on every platform and release."""
    digest = hashlib.blake2b(f"corpusmill-minhash:{label}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


_BASE = _constant("word-base") | 1  # odd, so it has an inverse modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_FMIX1 = _U64(0xFF51AFD7ED558CCD)
_FMIX2 = _U64(0xC4CEB9FE1A85EC53)


def fmix64(values: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser (in place): every output bit depends on every input bit."""
    values ^= values >> _U64(33)
    values *= _FMIX1
    values ^= values >> _U64(33)
    values *= _FMIX2
    values ^= values >> _U64(33)
    return values


@functools.cache
def char_table(lowercase: bool) -> np.ndarray:
    """uint32 per code point: 0 for characters outside `\\w`, else the (lowercased) code point itself."""
    codes = np.arange(0x110000, dtype="<u4")
    every = codes.tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(0x110000, np.uint32)
    for match in _WORD.finditer(every):
        table[match.start() : match.end()] = codes[match.start() : match.end()]
    if lowercase:
        word_codes = np.flatnonzero(table)
        # Lowercase every word character at once: NUL separators keep them apart (and are left alone).
        lowered = "\0".join(every[code] for code in word_codes.tolist()).lower().split("\0")
        single = np.fromiter((len(text) == 1 for text in lowered), bool, len(lowered))
        # Lowercasing that yields several characters (U+0130) keeps the original code point.
        kept = [text for text, alone in zip(lowered, single.tolist(), strict=True) if alone]
        table[word_codes[single]] = np.frombuffer("".join(kept).encode("utf-32-le", "surrogatepass"), "<u4")
    table.flags.writeable = False
    return table


class _Powers:
    """`P**i` and `P**-i` modulo 2**64 for i below a length that grows on demand (shared, read-mostly)."""

    def __init__(self) -> None:
        self.tables = (_EMPTY, _EMPTY)

    def get(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Both tables, at least `length` long; one cumulative product each, wrapping modulo 2**64."""
        tables = self.tables
        if len(tables[0]) < length:
            size = max(length, 2 * len(tables[0]))
            forward = np.full(size, _BASE, np.uint64)
            inverse = np.full(size, _BASE_INVERSE, np.uint64)
            forward[0] = inverse[0] = 1
            tables = (np.multiply.accumulate(forward), np.multiply.accumulate(inverse))
            self.tables = tables  # one assignment, so a concurrent reader never sees a mismatched pair
        return tables


_POWERS = _Powers()


def _word_spans(
    texts: Sequence[str], lowercase: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Code-point keys of the texts joined by newlines, word starts and ends, and words per text."""
    joined = "\n".join(texts)  # a non-word separator, so no word runs across two texts
    if joined.isascii():
        codes: np.ndarray = np.frombuffer(joined.encode("ascii"), np.uint8)
    else:
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), "<u4")
    keys = char_table(lowercase)[codes]
    in_word = np.zeros(len(keys) + 2, bool)
    in_word[1:-1] = keys != 0
    changes = np.flatnonzero(in_word[1:] != in_word[:-1])  # alternately a word's start and its end
    starts, ends = changes[0::2], changes[1::2]
    bounds = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter((len(text) + 1 for text in texts), np.int64, len(texts)), out=bounds[1:])
    counts = np.diff(np.searchsorted(starts, bounds))
    return keys, starts, ends, counts


def _word_hashes(keys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The finalised polynomial hash of every word, a window of whole words at a time."""
    hashes = np.empty(len(starts), np.uint64)
    if not len(starts):
        return hashes
    forward, inverse = _POWERS.get(max(_WINDOW, int((ends - starts).max())))
    first = 0
    while first < len(starts):
        # The window runs from this word's start to the last word ending within _WINDOW characters.
        origin = int(starts[first])
        last = max(first + 1, int(np.searchsorted(ends, origin + _WINDOW, side="right")))
        stop = int(ends[last - 1])
        prefix = np.multiply(keys[origin:stop], forward[: stop - origin], dtype=np.uint64)
        np.cumsum(prefix, out=prefix)  # non-word characters between words hold key 0
        local_start, local_end = starts[first:last] - origin, ends[first:last] - origin
        sums = prefix[local_end - 1]
        sums[1:] -= prefix[local_start[1:] - 1]  # the window starts at its first word
        sums *= inverse[local_start]
        hashes[first:last] = sums
        first = last
    hashes ^= (ends - starts).astype(np.uint64)
    return fmix64(hashes)


@functools.cache
def _ngram_multipliers(ngram_size: int) -> np.ndarray:
    """One odd multiplier per position in an n-gram, so that word order changes the n-gram's hash."""
    return np.array([_constant("ngram", k) | 1 for k in range(ngram_size)], np.uint64)


def _ngram_hashes(words: np.ndarray, counts: np.ndarray, ngram_size: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit shingle values of every document (grouped by document) and each document's shingle count."""
    multipliers = _ngram_multipliers(ngram_size)
    total = len(words)
    padded = np.concatenate([words, np.zeros(ngram_size - 1, np.uint64)])
    grams = padded[:total] * multipliers[0]
    for k in range(1, ngram_size):
        grams += padded[k : k + total] * multipliers[k]
    offsets = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    position = np.arange(total) - np.repeat(offsets, counts)
    valid = position <= np.repeat(counts - ngram_size, counts)
    short = np.flatnonzero((counts > 0) & (counts < ngram_size))
    if len(short):
        # A document of fewer than n words is a single shingle of all its words.
        short_counts = counts[short]
        whole = np.zeros(len(short), np.uint64)
        for k in range(ngram_size - 1):
            present = k < short_counts
            index = np.minimum(offsets[short] + k, total - 1)
            whole += np.where(present, words[index] * multipliers[k], _U64(0))
        grams[offsets[short]] = whole
        valid[offsets[short]] = True
    shingle_counts = np.where(counts >= ngram_size, counts - ngram_size + 1, np.minimum(counts, 1))
    return fmix64(grams[valid]) >> _U64(32), shingle_counts


def shingle_values(texts: Sequence[str], ngram_size: int, lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """The shingle values of several texts, concatenated in text order, and how many belong to each text."""
    keys, starts, ends, counts = _word_spans(texts, lowercase)
    return _ngram_hashes(_word_hashes(keys, starts, ends), counts, ngram_size)


class MinHasher:
    """`num_perm` seeded permutations of shingle values; signatures of many texts per call."""

    def __init__(self, num_perm: int, ngram_size: int, lowercase: bool, seed: int) -> None:
        self.num_perm = num_perm
        self.ngram_size = ngram_size
        self.lowercase = lowercase
        self.multipliers = np.array([_constant(f"a:{seed}", k) for k in range(num_perm)], np.uint64)
        self.offsets = np.array([_constant(f"b:{seed}", k) for k in range(num_perm)], np.uint64)

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(signatures uint32 [texts, num_perm], has_shingles bool [texts]); wordless texts' rows are 0."""
        signatures, counts, _, _ = self.signatures_and_sketches(texts, 0)
        return signatures, counts > 0

    def signatures_and_sketches(
        self, texts: Sequence[str], sketch_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Signatures, shingles per text, and each text's `bottom_k` sketch (values, then lengths) from one pass.

        With `sketch_size` 0 no sketches are made (both sketch arrays are empty).
        """
        signatures = np.zeros((len(texts), self.num_perm), np.uint32)
        counts = np.zeros(len(texts), np.int64)
        sketches: list[np.ndarray] = []
        sketch_counts = np.zeros(len(texts) if sketch_size else 0, np.int64)
        first = 0
        while first < len(texts):
            last, size = first, 0
            while last < len(texts) and (last == first or size + len(texts[last]) <= _GROUP_CHARS):
                size += len(texts[last])
                last += 1
            values, group_counts = shingle_values(texts[first:last], self.ngram_size, self.lowercase)
            signatures[first:last] = self._minima(values, group_counts)
            counts[first:last] = group_counts
            if sketch_size:
                sketch, sketch_counts[first:last] = bottom_k(values, group_counts, sketch_size)
                sketches.append(sketch)
            first = last
        sketch_values = np.concatenate(sketches) if sketches else np.zeros(0, np.uint32)
        return signatures, counts, sketch_values, sketch_counts

    def _minima(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Per-document minima of every permutation over that document's shingle values."""
        minima = np.full((self.num_perm, len(counts)), _MASK64, np.uint64)
        documents = np.flatnonzero(counts)
        ends = np.cumsum(counts)[documents]
        starts = ends - counts[documents]
        width = max(256, _BLOCK_VALUES // self.num_perm)
        block = np.empty((self.num_perm, width), np.uint64)
        multipliers, offsets = self.multipliers[:, None], self.offsets[:, None]
        for low in range(0, len(values), width):
            high = min(low + width, len(values))
            permuted = block[:, : high - low]
            np.multiply(multipliers, values[None, low:high], out=permuted)
            permuted += offsets
            # Documents overlapping this block; the first may have begun in an earlier one.
            first = int(np.searchsorted(ends, low, side="right"))
            last = int(np.searchsorted(starts, high, side="left"))
            segments = np.maximum(starts[first:last], low) - low
            lowest = np.minimum.reduceat(permuted, segments, axis=1)
            columns = documents[first:last]
            minima[:, columns] = np.minimum(minima[:, columns], lowest)
        minima >>= _U64(32)
        signatures = minima.T.astype(np.uint32)
        signatures[counts == 0] = 0
        return signatures


def bottom_k(values: np.ndarray, counts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each document's `size` smallest distinct shingle values, ascending and concatenated, and their counts.

    One sort of (document, value) pairs serves every document of the group; a document with fewer distinct
    values keeps them all, so its sketch is its whole shingle set.
    """
    documents = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
    keyed = np.sort((documents << _U64(32)) | values.astype(np.uint64))
    distinct = np.ones(len(keyed), bool)
    distinct[1:] = keyed[1:] != keyed[:-1]
    keyed = keyed[distinct]
    owner = (keyed >> _U64(32)).astype(np.int64)
    rank = np.arange(len(keyed)) - np.searchsorted(owner, np.arange(len(counts)))[owner]
    kept = keyed[rank < size]
    sketch_counts = np.bincount(owner[rank < size], minlength=len(counts))
    return (kept & _U64(0xFFFFFFFF)).astype(np.uint32), sketch_counts


def sketch_similarity(
    sketches: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    size: int,
    left: np.ndarray,
    right: np.ndarray,
    chunk: int = 1024,
) -> np.ndarray:
    """Jaccard estimates for pairs of documents from their `bottom_k` sketches.

    Below `tau`, the smaller of the two sketches' largest values (counting only a sketch that may have been
    cut at `size`), both sketches hold every value of their document; the estimate is the share of values
    below `tau` that the two documents have in common. It is exact when neither sketch was cut, and otherwise
    a sample of at least `size` values of the union (the standard bottom-k estimator uses exactly `size`).
    """
    out = np.empty(len(left), np.float64)
    sentinel = _U64(1 << 32)  # above every 32-bit value: padding never counts
    for low in range(0, len(left), chunk):
        pairs = [left[low : low + chunk], right[low : low + chunk]]
        width = int(max(counts[pairs[0]].max(), counts[pairs[1]].max()))
        columns = np.arange(width)
        rows, limits = [], []
        for side in pairs:
            index = starts[side][:, None] + columns
            present = columns < counts[side][:, None]
            rows.append(np.where(present, sketches[np.minimum(index, len(sketches) - 1)], sentinel))
            last = sketches[starts[side] + counts[side] - 1].astype(np.uint64)
            limits.append(np.where(counts[side] >= size, last, _U64(0xFFFFFFFF)))
        tau = np.minimum(limits[0], limits[1])[:, None]
        merged = np.sort(np.concatenate(rows, axis=1), axis=1)
        below = merged <= tau
        common = np.count_nonzero((merged[:, 1:] == merged[:, :-1]) & below[:, 1:], axis=1)
        out[low : low + chunk] = common / (np.count_nonzero(below, axis=1) - common)
    return out


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Binary LSH keys, uint8 [documents * bands, width]: 2-byte band index, then the band's identity.

    A band of up to 4 values is its own identity (16 raw bytes at most, so no collisions beyond equal bands);
    a wider band is reduced to two independent 64-bit hash lanes, 16 bytes.
    """
    documents = signatures.shape[0]
    banded = signatures[:, : bands * rows].reshape(documents, bands, rows)
    if rows * 4 <= 16:
        payload = (
            np.ascontiguousarray(banded.astype("<u4")).view(np.uint8).reshape(documents, bands, rows * 4)
        )
    else:
        lanes = np.empty((documents, bands, 2), "<u8")
        for lane in range(2):
            acc = np.full((documents, bands), _constant("band-lane", lane), np.uint64)
            step = _U64(_constant("band-step", lane) | 1)
            for row in range(rows):
                acc *= step
                acc += banded[:, :, row]
                fmix64(acc)
            lanes[:, :, lane] = acc
        payload = lanes.view(np.uint8).reshape(documents, bands, 16)
    index = np.arange(bands, dtype=">u2").view(np.uint8).reshape(1, bands, 2)
    keys = np.concatenate([np.broadcast_to(index, (documents, bands, 2)), payload], axis=2)
    return np.ascontiguousarray(keys).reshape(documents * bands, keys.shape[2])


def matching_fraction(
    signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1 << 14
) -> np.ndarray:
    """For each pair of row indices, the fraction of equal signature values: MinHash's Jaccard estimate."""
    out = np.empty(len(left), np.float64)
    for low in range(0, len(left), chunk):
        equal = signatures[left[low : low + chunk]] == signatures[right[low : low + chunk]]
        out[low : low + chunk] = np.count_nonzero(equal, axis=1) / signatures.shape[1]
    return out
