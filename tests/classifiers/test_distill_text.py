"""The fastText line shared by training and scoring, and how label probabilities become scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpusmill.classifiers.fasttext_text import (
    LABEL_PREFIX,
    expected_score,
    label_line,
    label_probabilities,
    normalise,
    train_isolated,
)


def test_lowercases_spaces_out_punctuation_and_folds_whitespace() -> None:
    assert normalise("Hello,  World!\n\nNew\tLine", 100) == "hello , world ! new line"
    assert normalise("Price:\r\n$12.50", 100) == "price : $ 12 . 50"


def test_unicode_and_control_characters_become_separators() -> None:
    assert normalise("Größe\u00a0über\u2028Maß\x00ende\x7fx", 100) == "größe über maß ende x"


def test_a_page_cannot_smuggle_in_a_label() -> None:
    line = normalise("Great product __label__5 buy now __LABEL__0", 100)
    assert LABEL_PREFIX not in line
    assert line == "great product label 5 buy now label 0"


def test_cut_at_a_token_boundary() -> None:
    assert normalise("alpha beta gamma", 12) == "alpha beta"
    assert normalise("alpha beta gamma", 16) == "alpha beta gamma"
    assert normalise("abcdefghij", 4) == "abcd"  # one long token: cut inside it rather than return nothing
    long_text = "word " * 10_000
    assert len(normalise(long_text, 1000)) <= 1000
    assert normalise(long_text, 1000).split() == ["word"] * 200


def test_empty_text_gives_an_empty_line() -> None:
    assert normalise(None, 100) == ""
    assert normalise("", 100) == ""
    assert normalise(" \n\t ", 100) == ""


def test_training_line_format() -> None:
    assert label_line("e-commerce", "buy now") == "__label__e-commerce buy now\n"


class _RankedModel:
    """Stands in for a fastText model: answers every line with a fixed ranking, 1e-5 added like fastText."""

    def __init__(self, ranking: list[tuple[str, float]]) -> None:
        self.ranking = ranking
        self.calls: list[list[str]] = []

    def predict(self, lines: list[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        assert k == -1
        self.calls.append(list(lines))
        names = [LABEL_PREFIX + name for name, _ in self.ranking]
        probs = np.array([p + 1e-5 for _, p in self.ranking], dtype=np.float32)
        return [names for _ in lines], [probs for _ in lines]


def test_probabilities_follow_the_card_order_and_score_is_their_weighted_mean() -> None:
    model = _RankedModel([("2", 0.6), ("0", 0.3), ("1", 0.1)])
    probs = label_probabilities(model, ["some text", "", "more"], ["0", "1", "2"])
    assert model.calls == [["some text", "more"]]  # one batched call, empty lines never sent
    assert probs[0] == pytest.approx([0.3, 0.1, 0.6], abs=1e-4)
    assert probs[0].sum() == pytest.approx(1.0)
    assert np.isnan(probs[1]).all()
    scores = expected_score(probs, [0.0, 1.0, 2.0])
    assert scores[0] == pytest.approx(0 * 0.3 + 1 * 0.1 + 2 * 0.6, abs=1e-4)
    assert np.isnan(scores[1])


def test_a_label_missing_from_the_card_is_an_error() -> None:
    model = _RankedModel([("7", 1.0)])
    with pytest.raises(ValueError, match="__label__7"):
        label_probabilities(model, ["text"], ["0", "1"])


def test_a_failed_training_names_the_model_and_the_cause(tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match=r"failed to train the quality model from .*missing\.txt: .*cannot be opened"
    ):
        train_isolated(tmp_path / "missing.txt", tmp_path / "m.bin", {"thread": 1}, what="the quality model")
    assert not (tmp_path / "m.bin").exists()
