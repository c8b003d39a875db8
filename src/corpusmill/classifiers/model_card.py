"""The model card of a distilled classifier directory: how well each model agrees with the annotator, and how it was made.

`distill` writes one `model_card.json` beside the fastText files, and `DistilledModels` reads it back: the card
is both the report a person reads before trusting a filter and the manifest the scorer loads (label order,
text normalisation, sha256 of every model file). It is written last, so a directory with a card is complete.

The metrics are computed here with numpy alone, on the holdout the models never trained on, with the common
conventions: a class nobody predicted has precision 0, a class absent from the holdout has recall 0, and the
macro average runs over the classes that occur in the holdout or in the predictions (a class seen only in
training neither helps nor hurts it). The card holds no timestamp or path, so the same annotations and
settings give a byte-identical card.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusmill.core.atomic import write_json

CARD_NAME = "model_card.json"
CARD_FORMAT = 1


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with the annotator's label as the row and the model's as the column, in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true, pred in zip(truth, predicted, strict=True):
        matrix[index[true], index[pred]] += 1
    return matrix


def classification_metrics(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro and weighted F1 and the confusion matrix of one model."""
    matrix = confusion_matrix(truth, predicted, labels)
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    precision = np.divide(hits, predicted_count, out=np.zeros_like(hits), where=predicted_count > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    occurring = (support > 0) | (predicted_count > 0)
    n = int(support.sum())
    return {
        "n": n,
        "accuracy": float(hits.sum() / n) if n else None,
        "macro_f1": float(f1[occurring].mean()) if occurring.any() else None,
        "weighted_f1": float((f1 * support).sum() / n) if n else None,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": list(labels),
            "rows": "annotator",
            "columns": "model",
            "counts": matrix.tolist(),
        },
    }


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing the mean of the ranks they span (what Spearman's rho needs)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson's r, or None when either side is constant (the correlation is undefined, not zero)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if len(a) < 2:
        return None
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    if denominator == 0.0:
        return None
    return float(a @ b) / denominator


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rho: Pearson's r of the tie-averaged ranks."""
    return pearson(rankdata(x), rankdata(y))


def score_agreement(model_scores: np.ndarray, annotator_scores: np.ndarray) -> dict[str, Any]:
    """How close the distilled continuous 0-5 score is to the annotator's score on the same documents."""
    model_scores = np.asarray(model_scores, dtype=np.float64)
    annotator_scores = np.asarray(annotator_scores, dtype=np.float64)
    return {
        "n": len(model_scores),
        "mean_absolute_error": float(np.abs(model_scores - annotator_scores).mean())
        if len(model_scores)
        else None,
        "pearson": pearson(model_scores, annotator_scores),
        "spearman": spearman(model_scores, annotator_scores),
    }


def label_distribution(values: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    """How many examples carry each label, every label listed (zeros included) in `labels` order."""
    counts = dict.fromkeys(labels, 0)
    for value in values:
        counts[value] += 1
    return counts


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks: the card pins every model file to the bytes that were evaluated."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_card(out_dir: Path, card: dict[str, Any]) -> Path:
    """Write the card atomically; NaN never reaches the JSON (it is not valid JSON), None stands in for it."""
    target = out_dir / CARD_NAME
    write_json(target, _no_nan(card))
    return target


def read_card(directory: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed card of a distilled directory and its raw bytes; the error says what the directory lacks."""
    path = directory / CARD_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a distilled classifier directory: {CARD_NAME} is missing; "
            "create one with corpusmill.classifiers.distill.distill(annotations_dir, out_dir)"
        )
    raw = path.read_bytes()
    card = json.loads(raw)
    if card.get("format") != CARD_FORMAT:
        raise ValueError(
            f"{path} has card format {card.get('format')!r}; this corpusmill reads format {CARD_FORMAT}: "
            "re-run distill with this version"
        )
    return card, raw


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return value
