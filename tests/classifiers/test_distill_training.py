"""distill on real WCXB pages labelled by simple rules: the models learn the rules, and the card tells the truth.

No LLM runs here, so annotations are made from the real ground-truth texts with labels a bag-of-words model can
learn: the overall score from the share of English function words (prose scores high, menus and product
grids low), the domain from the page type WCXB's curators assigned (product, forum, documentation, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.classifiers import distill as distill_module
from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA
from corpusmill.classifiers.distill import (
    NotEnoughAnnotations,
    distill,
    holdout_mask,
    read_annotations,
)
from corpusmill.classifiers.distilled import DistilledModels

FUNCTION_WORDS = frozenset(
    re.findall(r"\w+", "the of and to a in is that for it with as on was are be by this from or an at")
)
PAGE_DOMAIN = {
    "product": "e-commerce",
    "collection": "e-commerce",
    "listing": "e-commerce",
    "forum": "social-media",
    "documentation": "reference",
    "article": "other",
    "service": "other",
}
FAST = {"epochs": 15, "dim": 16, "bucket": 20_000, "max_chars": 1000, "lr": 0.5}


def prose_score(text: str) -> float:
    """0-5 from the share of function words (about 0.10 in lists and grids, 0.30 in running prose)."""
    words = re.findall(r"[a-z]+", text.lower())
    share = sum(w in FUNCTION_WORDS for w in words) / max(1, len(words))
    return float(np.clip(5 * (share - 0.10) / 0.22, 0, 5))


def long_word_score(text: str) -> float:
    """0-5 from the share of words of nine letters or more."""
    words = re.findall(r"[a-z]+", text.lower())
    return float(np.clip(5 * sum(len(w) >= 9 for w in words) / max(1, len(words)) / 0.15, 0, 5))


def wcxb_rows(shared_data: Path, limit: int | None = None) -> list[dict]:
    """One `ok` annotation per WCXB page that has text, labelled by the rules above."""
    rows = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json"))[:limit]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        text = (doc["ground_truth"].get("main_content") or "")[:3000]
        if not text.strip():
            continue
        page_type = doc["_internal"]["page_type"]["primary"]
        rows.append(
            {
                "id": f"wcxb-{path.stem}",
                "prompt_version": "quality-v1",
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "status": "ok",
                "text": text,
                "answer": "{}",
                "dim__overall": prose_score(text),
                "dim__coherence": prose_score(text),
                "dim__educational_value": long_word_score(text),
                "dim__safety": 5.0,  # every page rated safe: one label, so no model can be trained for it
                "domain": PAGE_DOMAIN[page_type],
            }
        )
    return rows


def write_annotations(directory: Path, rows: list[dict], name: str = "part-000.parquet") -> Path:
    """Write rows as an annotation file (missing fields are nulls)."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)
    pq.write_table(table, directory / name)
    return directory


def in_holdout_by_hand(doc_id: str, holdout: float) -> bool:
    """The documented split rule, restated: the first 8 bytes of sha256(id), big-endian, over 2**64."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:16], 16) / 2**64 < holdout


@pytest.fixture(scope="module")
def all_rows(shared_data: Path) -> list[dict]:
    return wcxb_rows(shared_data)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, all_rows: list[dict]) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("distill")
    failed = [
        {**all_rows[0], "id": "broken-1", "status": "unparseable", "dim__overall": None, "domain": None},
        {**all_rows[1], "id": "broken-2", "status": "error", "text": None, "dim__overall": None},
    ]
    annotations = write_annotations(base / "annotations", [*all_rows, *failed])
    result = distill(annotations, base / "models", seed=3, **FAST)
    return base / "models", result.card


def test_learns_the_rules_well_above_chance(distilled: tuple[Path, dict]) -> None:
    _, card = distilled
    quality = card["models"]["quality"]["holdout"]
    assert quality["agreement"]["spearman"] > 0.75
    assert quality["agreement"]["pearson"] > 0.75
    domain = card["models"]["domain"]["holdout"]
    majority = max(card["models"]["domain"]["label_distribution"]["holdout"].values()) / domain["n"]
    assert domain["accuracy"] > majority + 0.08
    # Always answering the majority class scores macro F1 of at most 2*m/(1+m)/4 over four classes.
    assert domain["macro_f1"] > 0.5


def test_card_matches_an_independent_recomputation(
    distilled: tuple[Path, dict], all_rows: list[dict]
) -> None:
    directory, card = distilled
    held = [row for row in all_rows if in_holdout_by_hand(row["id"], 0.2)]
    assert card["models"]["quality"]["rows"]["holdout"] == len(held)
    assert card["split"]["documents"]["holdout"] == len(held)
    models = DistilledModels.load(directory, cached=False)
    texts = [row["text"] for row in held]

    overall, _ = models.quality(texts, dimensions=[])
    truth = np.array([row["dim__overall"] for row in held])
    agreement = card["models"]["quality"]["holdout"]["agreement"]
    assert agreement["mean_absolute_error"] == pytest.approx(np.abs(overall - truth).mean(), abs=1e-9)
    assert agreement["pearson"] == pytest.approx(np.corrcoef(overall, truth)[0, 1], abs=1e-9)
    # The expected score can never leave the 0-5 range; baseline: always guessing the mean annotator score.
    assert ((overall >= 0) & (overall <= 5)).all()
    assert agreement["mean_absolute_error"] < 0.6 * np.abs(truth - truth.mean()).mean()

    labels, confidence = models.domain(texts)
    true_domains = [row["domain"] for row in held]
    domain_card = card["models"]["domain"]["holdout"]
    assert domain_card["accuracy"] == pytest.approx(
        np.mean([a == b for a, b in zip(labels, true_domains, strict=True)])
    )
    order = domain_card["confusion_matrix"]["labels"]
    expected = np.zeros((len(order), len(order)), dtype=int)
    for t, p in zip(true_domains, labels, strict=True):
        expected[order.index(t), order.index(p)] += 1
    assert domain_card["confusion_matrix"]["counts"] == expected.tolist()
    assert card["models"]["domain"]["label_distribution"]["holdout"] == {
        label: true_domains.count(label) for label in order
    }
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_card_records_settings_sources_and_file_hashes(
    distilled: tuple[Path, dict], all_rows: list[dict]
) -> None:
    directory, card = distilled
    on_disk = json.loads((directory / "model_card.json").read_text())
    assert on_disk == card
    assert card["fasttext"]["thread"] == 1
    assert card["fasttext"]["seed"] == 3 and card["seed"] == 3
    assert (
        card["fasttext"]["epoch"] == 15
        and card["fasttext"]["dim"] == 16
        and card["fasttext"]["wordNgrams"] == 2
    )
    assert card["split"]["holdout"] == 0.2
    assert card["text"]["max_chars"] == 1000
    assert card["annotations"]["prompt_versions"] == ["quality-v1"]
    assert card["annotations"]["models"] == ["Qwen/Qwen2.5-7B-Instruct"]
    assert card["annotations"]["status"] == {"error": 1, "ok": len(all_rows), "unparseable": 1}
    assert card["annotations"]["rows_used"] == len(all_rows)
    assert card["corpusmill_version"]
    for name, entry in card["models"].items():
        path = directory / entry["file"]
        assert path.name == f"{name}.bin"
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        rows = entry["rows"]
        assert sum(entry["label_distribution"]["train"].values()) == rows["train"]
        assert rows["train"] + rows["holdout"] == len(all_rows)


def test_one_model_per_dimension_present_and_constant_ones_skipped(distilled: tuple[Path, dict]) -> None:
    directory, card = distilled
    assert set(card["models"]) == {"quality", "quality__coherence", "quality__educational_value", "domain"}
    assert "two different labels" in card["skipped"]["quality__safety"]
    assert sorted(p.name for p in directory.glob("*.bin")) == [
        "domain.bin",
        "quality.bin",
        "quality__coherence.bin",
        "quality__educational_value.bin",
    ]
    models = DistilledModels.load(directory)
    assert models.dimensions == ("educational_value", "coherence")
    with pytest.raises(KeyError, match="safety"):
        models.quality(["some text"], dimensions=["safety"])


def test_two_distills_give_identical_models_and_cards(tmp_path: Path, all_rows: list[dict]) -> None:
    annotations = write_annotations(tmp_path / "annotations", all_rows[:300])
    first = distill(annotations, tmp_path / "a", **{**FAST, "epochs": 5})
    second = distill(annotations, tmp_path / "b", workers=2, **{**FAST, "epochs": 5})
    assert first.card == second.card
    for name, path in first.model_files.items():
        assert path.read_bytes() == second.model_files[name].read_bytes()


def test_split_is_stable_and_has_the_requested_size() -> None:
    ids = [f"doc-{i}" for i in range(20_000)]
    mask = holdout_mask(ids, 0.2)
    assert abs(mask.mean() - 0.2) < 0.01
    assert mask.tolist() == [in_holdout_by_hand(doc_id, 0.2) for doc_id in ids]
    # Independent of order and of the other documents; a larger holdout only adds documents.
    reversed_mask = holdout_mask(ids[::-1], 0.2)[::-1]
    assert (reversed_mask == mask).all()
    assert holdout_mask(ids[5:6], 0.2)[0] == mask[5]
    assert (holdout_mask(ids, 0.3) | ~mask).all()


def test_last_file_wins_and_filters_apply(tmp_path: Path, all_rows: list[dict]) -> None:
    directory = tmp_path / "annotations"
    write_annotations(directory, [{**all_rows[0], "domain": "news"}, all_rows[1]], "part-000.parquet")
    write_annotations(directory, [{**all_rows[0], "domain": "science"}], "part-001.parquet")
    other_prompt = {**all_rows[2], "prompt_version": "quality-v2"}
    write_annotations(directory, [other_prompt], "part-002.parquet")

    data = read_annotations(directory)
    by_id = dict(zip(data.ids, data.domains, strict=True))
    assert by_id[all_rows[0]["id"]] == "science"
    assert data.summary["superseded_answers"] == 1
    assert data.summary["prompt_versions"] == ["quality-v1", "quality-v2"]

    only_v2 = read_annotations(directory, prompt_version="quality-v2")
    assert only_v2.ids == [all_rows[2]["id"]]
    assert only_v2.summary["excluded_by_filter"] == 2
    assert read_annotations(tmp_path, model="someone-else").ids == []  # <run_dir>/annotations is found too


def test_too_few_annotations_says_how_many_are_needed(tmp_path: Path, all_rows: list[dict]) -> None:
    annotations = write_annotations(tmp_path / "annotations", all_rows[:20])
    with pytest.raises(NotEnoughAnnotations, match=r"20 usable 'ok' annotations.*at least 50 are needed"):
        distill(annotations, tmp_path / "out", **FAST)
    assert distill_module.annotations_needed(0.5) == 80
    assert not (tmp_path / "out" / "model_card.json").exists()


def test_a_single_domain_cannot_be_distilled(tmp_path: Path, all_rows: list[dict]) -> None:
    rows = [{**row, "domain": "other"} for row in all_rows[:120]]
    annotations = write_annotations(tmp_path / "annotations", rows)
    with pytest.raises(NotEnoughAnnotations, match=r"domain label 'other'.*at least two different labels"):
        distill(annotations, tmp_path / "out", **FAST)


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no annotation files"):
        distill(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        distill(tmp_path, tmp_path / "out", holdout=1.0)
