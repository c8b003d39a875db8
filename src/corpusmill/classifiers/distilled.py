"""`DistilledModels`: a distilled classifier directory loaded for scoring, once per worker process.

The model card is the manifest: it names each model file, pins its sha256, and gives the label order and the
text normalisation the models were trained with, so scoring sees text exactly as training did. A file whose
hash differs from the card is refused: scores from a model other than the one the card evaluated would be
numbers nobody measured.

Loading a directory verifies and reads every model in it (tens of MB each), so each worker process keeps one
instance per directory: `DistilledModels.load` returns the cached instance. The cache key includes a digest of
the card, so a directory re-distilled in place is loaded afresh instead of served stale.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusmill.classifiers import fasttext_text, model_card
from corpusmill.classifiers.distill import DOMAIN_MODEL, quality_model_name
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL

logger = logging.getLogger(__name__)

_CACHE: dict[tuple[str, str], DistilledModels] = {}
_CACHE_LOCK = threading.Lock()


class DistilledModels:
    """The quality, dimension and domain models of one distilled directory, with batched prediction."""

    def __init__(self, directory: Path, card: dict[str, Any], models: dict[str, Any]) -> None:
        self.directory = directory
        self.card = card
        self.max_chars = int(card["text"]["max_chars"])
        self._models = models
        self._labels = {name: list(card["models"][name]["labels"]) for name in models}
        self.dimensions: tuple[str, ...] = tuple(
            d for d in DIMENSION_NAMES if quality_model_name(d) in models
        )

    @classmethod
    def load(cls, directory: str | Path, *, cached: bool = True) -> DistilledModels:
        """The models of `directory`, verified against its card; one shared instance per process unless cached=False."""
        path = Path(directory).resolve()
        card, raw = model_card.read_card(path)
        key = (str(path), hashlib.sha256(raw).hexdigest())
        if not cached:
            return cls._read(path, card)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = cls._read(path, card)
            return _CACHE[key]

    @classmethod
    def _read(cls, directory: Path, card: dict[str, Any]) -> DistilledModels:
        if card.get("text", {}).get("format") != fasttext_text.TEXT_FORMAT:
            raise ValueError(
                f"{directory / model_card.CARD_NAME}: text format {card.get('text', {}).get('format')!r} is not "
                f"this corpusmill's ({fasttext_text.TEXT_FORMAT}); re-run distill so training and scoring agree"
            )
        for required in (quality_model_name(OVERALL), DOMAIN_MODEL):
            if required not in card.get("models", {}):
                raise ValueError(
                    f"{directory / model_card.CARD_NAME} lists no {required!r} model; re-run distill"
                )
        models = {}
        for name, entry in card["models"].items():
            file = directory / entry["file"]
            if not file.is_file():
                raise FileNotFoundError(
                    f"{file} is listed in {model_card.CARD_NAME} but missing; re-run distill"
                )
            found = model_card.file_sha256(file)
            if found != entry["sha256"]:
                raise ValueError(
                    f"{file} does not match its model card (sha256 {found}, card says {entry['sha256']}): the "
                    "directory changed after distill, or a distill into it was interrupted; re-run distill"
                )
            models[name] = fasttext_text.load_model(file)
            expected = {fasttext_text.LABEL_PREFIX + label for label in entry["labels"]}
            if set(models[name].get_labels()) != expected:
                raise ValueError(
                    f"{file}: the model's labels differ from those its model card lists; re-run distill"
                )
        logger.info("distilled models: loaded %s (%s)", directory, ", ".join(sorted(models)))
        return cls(directory, card, models)

    def lines(self, texts: Sequence[str | None]) -> list[str]:
        """The normalised fastText lines for `texts`, exactly as the models were trained on."""
        return [fasttext_text.normalise(text, self.max_chars) for text in texts]

    def quality(
        self, texts: Sequence[str | None], dimensions: Iterable[str] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Continuous 0-5 overall scores and per-dimension scores (all available, or those named); NaN for empty text."""
        wanted = self.dimensions if dimensions is None else tuple(dimensions)
        missing = [d for d in wanted if d not in self.dimensions]
        if missing:
            raise KeyError(
                f"{self.directory} has no model for the dimension(s) {missing}; it has {list(self.dimensions)} "
                f"(see 'skipped' in its {model_card.CARD_NAME})"
            )
        lines = self.lines(texts)
        overall = self._expected(quality_model_name(OVERALL), lines)
        return overall, {d: self._expected(quality_model_name(d), lines) for d in wanted}

    def domain(self, texts: Sequence[str | None]) -> tuple[list[str | None], np.ndarray]:
        """The most probable domain per text and its probability; None and NaN for empty text."""
        probs = self.probabilities(DOMAIN_MODEL, self.lines(texts))
        labels = self._labels[DOMAIN_MODEL]
        empty = np.isnan(probs).any(axis=1)
        best = np.where(empty, 0, np.nan_to_num(probs).argmax(axis=1))
        chosen = [None if gone else labels[j] for gone, j in zip(empty, best, strict=True)]
        confidence = np.where(empty, np.nan, np.nan_to_num(probs).max(axis=1))
        return chosen, confidence

    def probabilities(self, name: str, lines: Sequence[str]) -> np.ndarray:
        """One model's label probabilities for already normalised lines, columns in its card's label order."""
        return fasttext_text.label_probabilities(self._models[name], lines, self._labels[name])

    def _expected(self, name: str, lines: Sequence[str]) -> np.ndarray:
        values = [float(label) for label in self._labels[name]]
        return fasttext_text.expected_score(self.probabilities(name, lines), values)


def clear_cache() -> None:
    """Forget every loaded directory (a long-lived process that re-distills can release the memory)."""
    with _CACHE_LOCK:
        _CACHE.clear()
