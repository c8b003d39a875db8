"""The model card's metrics on small hand-made examples whose values are worked out in the comments."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from corpusmill.classifiers.model_card import (
    CARD_NAME,
    classification_metrics,
    confusion_matrix,
    file_sha256,
    label_distribution,
    pearson,
    rankdata,
    read_card,
    score_agreement,
    spearman,
    write_card,
)

# Six holdout documents, four possible labels; `d` occurs nowhere.
TRUTH = ["a", "a", "a", "b", "b", "c"]
PREDICTED = ["a", "a", "b", "b", "c", "c"]
LABELS = ["a", "b", "c", "d"]


def test_confusion_matrix_rows_are_the_annotator() -> None:
    assert confusion_matrix(TRUTH, PREDICTED, LABELS).tolist() == [
        [2, 1, 0, 0],  # two a's right, one called b
        [0, 1, 1, 0],  # one b right, one called c
        [0, 0, 1, 0],
        [0, 0, 0, 0],
    ]


def test_classification_metrics_by_hand() -> None:
    metrics = classification_metrics(TRUTH, PREDICTED, LABELS)
    per_class = metrics["per_class"]
    # a: predicted twice, both right -> P 1; 2 of 3 found -> R 2/3; F1 = 2*(2/3)/(5/3) = 0.8
    assert per_class["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    # b: predicted twice, one right -> P 1/2; 1 of 2 found -> R 1/2; F1 1/2
    assert per_class["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    # c: predicted twice, one right -> P 1/2; 1 of 1 found -> R 1; F1 = 2*(1/2)/(3/2) = 2/3
    assert per_class["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    # d: never predicted, never true -> zeros by convention
    assert per_class["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Macro over the classes that occur (a, b, c): (0.8 + 0.5 + 2/3) / 3 = 59/90; `d` must not drag it down.
    assert metrics["macro_f1"] == pytest.approx(59 / 90)
    # Weighted by support: (0.8*3 + 0.5*2 + 2/3*1) / 6 = 61/90
    assert metrics["weighted_f1"] == pytest.approx(61 / 90)
    assert metrics["n"] == 6
    assert metrics["confusion_matrix"]["labels"] == LABELS


def test_a_perfect_model_scores_one() -> None:
    metrics = classification_metrics(TRUTH, TRUTH, LABELS)
    assert metrics["accuracy"] == metrics["macro_f1"] == metrics["weighted_f1"] == 1.0


def test_ranks_share_ties() -> None:
    assert rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert rankdata([7, 7, 7]).tolist() == [2.0, 2.0, 2.0]


def test_correlations_by_hand() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # Centred: a = b' = (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0.5, -0.5, 1.5); a.b = 4, |a|^2 = |b|^2 = 5 -> 0.8
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # Spearman only sees the order: 1000 is rank 4 like 4 above, so the same 0.8; Pearson is pulled by 1000.
    assert spearman([1, 2, 3, 4], [10, 30, 20, 1000]) == pytest.approx(0.8)
    assert pearson([1, 2, 3, 4], [10, 30, 20, 1000]) != pytest.approx(0.8)
    # Undefined, not zero, when a side is constant or there is too little data.
    assert pearson([1, 2, 3], [5, 5, 5]) is None
    assert spearman([1], [2]) is None


def test_score_agreement() -> None:
    agreement = score_agreement(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 3.0]))
    assert agreement["mean_absolute_error"] == pytest.approx(1 / 3)
    assert agreement["n"] == 3
    # Model (1,2,3) vs annotator (1,3,3): centred (-1,0,1) and (-4/3,2/3,2/3): dot 2, norms 2 and 8/3.
    assert agreement["pearson"] == pytest.approx(2 / math.sqrt(2 * 8 / 3))


def test_label_distribution_lists_every_label() -> None:
    assert label_distribution(["a", "b", "a"], ["a", "b", "c"]) == {"a": 2, "b": 1, "c": 0}


def test_sha256_of_a_known_vector(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_card_round_trip_turns_nan_into_null(tmp_path: Path) -> None:
    write_card(
        tmp_path, {"format": 1, "models": {"quality": {"pearson": float("nan"), "values": [1.0, math.inf]}}}
    )
    text = (tmp_path / CARD_NAME).read_text()
    assert "NaN" not in text and "Infinity" not in text
    card, raw = read_card(tmp_path)
    assert card["models"]["quality"] == {"pearson": None, "values": [1.0, None]}
    assert json.loads(raw) == card


def test_reading_a_card_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model_card\.json is missing"):
        read_card(tmp_path)
    (tmp_path / CARD_NAME).write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="card format 99"):
        read_card(tmp_path)
