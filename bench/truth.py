"""Ground truth for deduplication: every record's extracted text and the exact Jaccard of every similar pair.

Whether two records are duplicates is decided on what a pipeline deduplicates: the extracted main text. The
builder extracts every record with trafilatura called directly, with the settings of corpusmill's `extract`
stage defaults (read from its parameter model, so the two cannot drift), and computes the exact Jaccard
similarity of word 5-gram sets (words are `\\w+` runs, lowercased; a text shorter than five words is one
shingle) for every pair that shares a shingle, through an inverted index. No MinHash is involved, so the
truth does not inherit either system's approximation.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
NGRAM = 5


def extract_options() -> dict[str, Any]:
    """trafilatura options equal to corpusmill's `extract` stage defaults."""
    from corpusmill.filters.extract import ExtractParams

    params = ExtractParams()
    return {
        "favor_precision": params.favor_precision,
        "include_tables": params.include_tables,
        "include_comments": params.include_comments,
        "deduplicate": params.deduplicate,
    }


def extract_direct(page: str) -> str | None:
    """trafilatura on one page, in this process, with the stage's default settings."""
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    return trafilatura.extract(page, output_format="txt", **extract_options())


def _safe_extract(page: str) -> str | None:
    try:
        return extract_direct(page)
    except Exception as exc:  # one bad page must not stop a corpus build
        log.warning("trafilatura failed on a page: %r", exc)
        return None


def _extract_chunk(pages: list[str]) -> list[str | None]:
    return [_safe_extract(page) for page in pages]


def extract_all(pages: Sequence[str], workers: int, timeout_s: float = 300.0) -> list[str | None]:
    """Extract many pages on `workers` processes; a chunk of 4 pages over `timeout_s` yields None for each."""
    if workers <= 1 or len(pages) < 8:
        return _extract_chunk(list(pages))
    chunks = [list(pages[i : i + 4]) for i in range(0, len(pages), 4)]
    results: list[str | None] = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending = [pool.apply_async(_extract_chunk, (chunk,)) for chunk in chunks]
        for chunk, result in zip(chunks, pending, strict=True):
            try:
                results.extend(result.get(timeout=timeout_s))
            except multiprocessing.TimeoutError:
                log.warning("4 pages took over %.0f s to extract; counted as not extracted", timeout_s)
                results.extend([None] * len(chunk))
    return results


def shingles(text: str | None) -> set[str]:
    """Word 5-grams of a text, lowercased (the whole text as one shingle when it is shorter)."""
    words = _WORD.findall((text or "").lower())
    if not words:
        return set()
    if len(words) <= NGRAM:
        return {" ".join(words)}
    return {" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def jaccard(a: str | None, b: str | None) -> float:
    """Exact word 5-gram Jaccard similarity of two texts (0 when either has no words)."""
    left, right = shingles(a), shingles(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def similar_pairs(
    texts: Iterable[tuple[str, str | None]], min_jaccard: float
) -> list[tuple[str, str, float]]:
    """Every pair of ids whose texts have exact Jaccard >= min_jaccard, sorted; ids are given in any order."""
    ids: list[str] = []
    sets: list[set[str]] = []
    index: dict[str, list[int]] = {}
    for doc_id, text in texts:
        grams = shingles(text)
        if not grams:
            continue
        position = len(ids)
        ids.append(doc_id)
        sets.append(grams)
        for gram in grams:
            index.setdefault(gram, []).append(position)
    pairs = []
    for position, grams in enumerate(sets):
        shared: Counter[int] = Counter()
        for gram in grams:
            for other in index[gram]:
                if other > position:
                    shared[other] += 1
        for other, common in shared.items():
            union = len(grams) + len(sets[other]) - common
            similarity = common / union
            if similarity >= min_jaccard:
                a, b = sorted((ids[position], ids[other]))
                pairs.append((a, b, round(similarity, 4)))
    return sorted(pairs)
