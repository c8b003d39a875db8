"""Quality: deduplication against the built ground truth, extraction against WCXB's human-reviewed text.

Deduplication is scored on the documents that reached the dedup step of the run being scored (earlier
steps drop different documents in different runs, and a document that never reached dedup cannot be
removed by it). True duplicates are the pairs of such documents whose exact word 5-gram Jaccard is at least
the threshold; their connected components are the duplicate groups, and a group of n documents should lose
exactly n - 1. Which member survives is the system's choice (corpusmill keeps the smallest id, datatrove the
first it read), so the score does not depend on it: per group, removals up to n - 1 are true positives,
any beyond are false positives (the content is gone altogether), missing ones are false negatives, and
every removed document outside all groups is a false positive. Precision, recall and F1 follow.

Extraction is scored per page with bag-of-words precision and recall (lowercased `\\w+` words, counted
with multiplicity) of the extracted text against WCXB's `main_content`; a page that yields no text scores
0. The reported figures are means over pages (macro averages), as WCXB reports them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

_WORD = re.compile(r"\w+")


def word_scores(extracted: str | None, truth: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of one extracted text against its ground truth."""
    got = Counter(_WORD.findall((extracted or "").lower()))
    want = Counter(_WORD.findall(truth.lower()))
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision = common / sum(got.values())
    recall = common / sum(want.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def extraction_quality(texts: Mapping[str, str | None], truths: Mapping[str, str]) -> dict[str, Any]:
    """Mean word precision, recall and F1 over the pages in `truths`; pages missing from `texts` score 0."""
    scores = [word_scores(texts.get(page), truth) for page, truth in truths.items()]
    if not scores:
        return {"pages": 0, "precision": None, "recall": None, "f1": None, "no_text": 0}
    pages = len(scores)
    return {
        "pages": pages,
        "precision": sum(s[0] for s in scores) / pages,
        "recall": sum(s[1] for s in scores) / pages,
        "f1": sum(s[2] for s in scores) / pages,
        "no_text": sum(1 for page in truths if not texts.get(page)),
    }


def _groups(members: set[str], pairs: Iterable[tuple[str, str]]) -> list[set[str]]:
    parent = {m: m for m in members}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in pairs:
        if a in parent and b in parent:
            root_a, root_b = find(a), find(b)
            if root_a != root_b:
                parent[root_b] = root_a
    groups: dict[str, set[str]] = {}
    for member in members:
        groups.setdefault(find(member), set()).add(member)
    return [group for group in groups.values() if len(group) > 1]


def dedup_quality(
    entered: Iterable[str], removed: Iterable[str], pairs: Iterable[Iterable[Any]], threshold: float
) -> dict[str, Any]:
    """Precision, recall and F1 of the removed documents against the true duplicate groups at `threshold`."""
    entered_set, removed_set = set(entered), set(removed)
    scored = [(str(a), str(b), float(j)) for a, b, j in pairs]
    groups = _groups(entered_set, ((a, b) for a, b, j in scored if j >= threshold))
    tp = fn = fp = over = 0
    grouped: set[str] = set()
    for group in groups:
        grouped |= group
        expected = len(group) - 1
        hits = len(group & removed_set)
        tp += min(hits, expected)
        fn += expected - min(hits, expected)
        over += max(0, hits - expected)
    fp += over
    outside = removed_set - grouped
    fp += len(outside)
    best: dict[str, float] = {}
    for a, b, j in scored:
        if a in entered_set and b in entered_set:
            best[a], best[b] = max(best.get(a, 0.0), j), max(best.get(b, 0.0), j)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "entered": len(entered_set),
        "removed": len(removed_set),
        "groups": len(groups),
        "should_remove": tp + fn,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "false_positives_whole_group_removed": over,
        "false_positives_jaccard_0.5_to_threshold": sum(1 for doc in outside if best.get(doc, 0.0) >= 0.5),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _read_texts(path: str) -> dict[str, str | None]:
    import gzip
    import json

    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return {row["id"]: row["text"] for row in map(json.loads, handle)}


EXTRACTORS = (("corpusmill-bare", "corpusmill extract stage"), ("datatrove-bare", "datatrove extractor"))


def evaluate(
    truth: dict[str, Any],
    page_truths: Mapping[str, str],
    direct: Mapping[str, str | None],
    runs: Mapping[str, dict[str, Any]],
    threshold: float,
) -> dict[str, Any]:
    """Dedup quality of every run that reports its dedup ids; extraction quality on the corpus's original pages."""
    dedup = {
        job: dedup_quality(run["entered_dedup"], run["removed_by_dedup"], truth["pairs"], threshold)
        for job, run in runs.items()
        if "entered_dedup" in run
    }
    page_of = {r["id"]: r["page"] for r in truth["records"] if r["kind"] == "original"}
    truths = {page: page_truths[page] for page in page_of.values() if page in page_truths}
    extraction = {
        "trafilatura direct": extraction_quality(
            {page_of[i]: t for i, t in direct.items() if i in page_of}, truths
        )
    }
    for job, name in EXTRACTORS:
        path = runs.get(job, {}).get("extracted_path")
        if path:
            texts = _read_texts(path)
            extraction[name] = extraction_quality(
                {page_of[i]: t for i, t in texts.items() if i in page_of}, truths
            )
    return {"dedup": dedup, "extraction": extraction}
