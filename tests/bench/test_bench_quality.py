"""Dedup and extraction scores, on cases small enough to count by hand."""

from __future__ import annotations

import pytest
from bench.quality import dedup_quality, extraction_quality, word_scores

# Documents a..g; {a, b, c} and {d, e} are true duplicate groups at 0.8; f is close to d but below it.
PAIRS = [
    ("a", "b", 0.95),
    ("b", "c", 0.85),
    ("a", "c", 0.79),
    ("d", "e", 0.9),
    ("d", "f", 0.7),
    ("x", "a", 0.99),  # x never reached dedup in this run: it must not count
]
ENTERED = ["a", "b", "c", "d", "e", "f", "g"]


def test_perfect_removal_scores_one_whichever_member_survives() -> None:
    keep_first = dedup_quality(ENTERED, ["b", "c", "e"], PAIRS, 0.8)
    keep_other = dedup_quality(ENTERED, ["a", "c", "d"], PAIRS, 0.8)
    for score in (keep_first, keep_other):
        assert (score["true_positives"], score["false_positives"], score["false_negatives"]) == (3, 0, 0)
        assert score["precision"] == score["recall"] == score["f1"] == 1.0
        assert score["groups"] == 2 and score["should_remove"] == 3


def test_false_positives_misses_and_removing_a_whole_group() -> None:
    # Whole group {d, e} removed (one too many), c missed, f removed (J 0.7, below threshold), g removed (unrelated).
    score = dedup_quality(ENTERED, ["b", "d", "e", "f", "g"], PAIRS, 0.8)
    assert score["true_positives"] == 2  # b, and one of d/e
    assert score["false_negatives"] == 1  # c
    assert score["false_positives"] == 3  # the second of d/e, f, g
    assert score["false_positives_whole_group_removed"] == 1
    assert score["false_positives_jaccard_0.5_to_threshold"] == 1  # f
    assert score["precision"] == pytest.approx(2 / 5) and score["recall"] == pytest.approx(2 / 3)
    assert score["f1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))


def test_the_threshold_decides_the_groups() -> None:
    # At 0.65, f joins {d, e}: removing f is now right.
    score = dedup_quality(ENTERED, ["b", "c", "e", "f"], PAIRS, 0.65)
    assert (score["true_positives"], score["false_positives"], score["false_negatives"]) == (4, 0, 0)
    nothing = dedup_quality(ENTERED, [], PAIRS, 0.8)
    assert nothing["precision"] is None and nothing["recall"] == 0.0 and nothing["f1"] is None


def test_word_scores_count_words_with_multiplicity() -> None:
    # extracted: the x3, cat, sat (5 words); truth: the x2, cat, sat, down (5 words); common: the x2, cat, sat = 4
    precision, recall, f1 = word_scores("The the THE cat, sat.", "the cat sat down the")
    assert (precision, recall) == (pytest.approx(4 / 5), pytest.approx(4 / 5)) and f1 == pytest.approx(0.8)
    assert word_scores(None, "anything") == (0.0, 0.0, 0.0)


def test_extraction_quality_averages_pages_and_counts_missing_text() -> None:
    truths = {"p1": "alpha beta", "p2": "gamma delta", "p3": "epsilon"}
    result = extraction_quality({"p1": "alpha beta", "p2": "gamma"}, truths)
    assert result["pages"] == 3 and result["no_text"] == 1
    assert result["recall"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert result["precision"] == pytest.approx((1 + 1 + 0) / 3)
    assert result["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
