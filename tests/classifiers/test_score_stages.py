"""The `quality` and `domain` stages on real WCXB pages, with models distilled here from rule-made labels."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from corpusmill.classifiers import distilled as distilled_module
from corpusmill.classifiers import fasttext_text
from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA
from corpusmill.classifiers.distill import distill
from corpusmill.classifiers.distilled import DistilledModels
from corpusmill.classifiers.score_stages import DomainStage, QualityStage
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES
from corpusmill.core import schema
from corpusmill.core.stage import resolve_stage

TRAIN_DOCS = 600
SCORED_DOCS = 60
FUNCTION_WORDS = frozenset(
    re.findall(r"\w+", "the of and to a in is that for it with as on was are be by this")
)
PAGE_DOMAIN = {
    "product": "e-commerce",
    "collection": "e-commerce",
    "listing": "e-commerce",
    "forum": "social-media",
}


def _pages(shared_data: Path) -> list[tuple[str, str, str]]:
    pages = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        text = doc["ground_truth"].get("main_content") or ""
        if text.strip():
            pages.append((f"wcxb-{path.stem}", text, doc["_internal"]["page_type"]["primary"]))
    return pages


def _prose_score(text: str) -> float:
    words = re.findall(r"[a-z]+", text.lower())
    return float(
        np.clip(5 * (sum(w in FUNCTION_WORDS for w in words) / max(1, len(words)) - 0.1) / 0.2, 0, 5)
    )


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> list[tuple[str, str, str]]:
    return _pages(shared_data)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, pages: list[tuple[str, str, str]]) -> Path:
    """Trained on every other page: overall and coherence from the share of function words, domain from the
    page type; no other dimension."""
    rows = [
        {
            "id": doc_id,
            "prompt_version": "v1",
            "model": "qwen",
            "status": "ok",
            "text": text[:2000],
            "dim__overall": _prose_score(text[:2000]),
            "dim__coherence": _prose_score(text[:2000]),
            "domain": PAGE_DOMAIN.get(page_type, "other"),
        }
        for doc_id, text, page_type in pages[::2][:TRAIN_DOCS]
    ]
    base = tmp_path_factory.mktemp("score")
    (base / "annotations").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA), base / "annotations" / "a.parquet")
    distill(base / "annotations", base / "models", epochs=10, dim=16, bucket=20_000, max_chars=800)
    return base / "models"


@pytest.fixture(scope="module")
def batch(pages: list[tuple[str, str, str]]) -> pa.RecordBatch:
    """Unseen pages from across the collection, plus one empty and one null text at the end."""
    scored = pages[1::20][:SCORED_DOCS]
    rows = [{"id": doc_id, "text": text} for doc_id, text, _ in scored]
    return schema.reader_batch([*rows, {"id": "empty", "text": ""}, {"id": "null", "text": None}])


def _stage(name: str, **params: object) -> QualityStage | DomainStage:
    cls = resolve_stage(name)
    stage = cls(cls.Params(**params))
    stage.setup()
    return stage  # type: ignore[return-value]


def test_stages_are_registered_under_versioned_names() -> None:
    assert resolve_stage("quality") is QualityStage
    assert resolve_stage("quality_v1") is QualityStage
    assert resolve_stage("domain") is DomainStage
    assert resolve_stage("domain_v1") is DomainStage


def test_quality_writes_scores_equal_to_the_models(model_dir: Path, batch: pa.RecordBatch) -> None:
    stage = _stage("quality", model=str(model_dir))
    out = stage(batch)
    declared = {field.name: field.type for field in stage.output_fields()}
    assert declared == {
        "score__quality": pa.float64(),
        **{f"score__{d}": pa.float64() for d in DIMENSION_NAMES},
    }
    for name, type_ in declared.items():
        assert out.schema.field(name).type == type_
    assert out.column(schema.ID).to_pylist() == batch.column(schema.ID).to_pylist()

    texts = batch.column(schema.TEXT).to_pylist()
    overall, per_dim = DistilledModels.load(model_dir).quality(texts[:SCORED_DOCS])
    scores = out.column("score__quality").to_pylist()
    assert scores[:SCORED_DOCS] == pytest.approx(overall.tolist())
    assert scores[SCORED_DOCS:] == [None, None]  # empty and null text: no score
    assert out.column("score__coherence").to_pylist()[:SCORED_DOCS] == pytest.approx(
        per_dim["coherence"].tolist()
    )
    assert out.column("score__safety").null_count == out.num_rows  # no model for it: null, never invented
    assert all(0.0 <= s <= 5.0 for s in scores[:SCORED_DOCS])
    assert len(set(scores[:SCORED_DOCS])) > SCORED_DOCS // 2  # continuous, not six integers
    assert out.column(schema.DROP_REASON).null_count == out.num_rows  # no floors: nothing dropped

    stats = stage.take_stats()
    assert stats.counters["quality.scored"] == SCORED_DOCS
    assert stats.counters["quality.empty"] == 2
    assert sum(v for k, v in stats.counters.items() if k.startswith("quality.rounded.")) == SCORED_DOCS
    assert stats.moments["quality.score"].count == SCORED_DOCS
    assert stats.moments["quality.score"].mean == pytest.approx(float(np.mean(overall)))
    assert sum(stats.histograms["quality.score"].values()) == SCORED_DOCS
    assert stats.moments["quality.score.coherence"].count == SCORED_DOCS


def test_quality_floors_mark_drops_with_reasons(model_dir: Path, batch: pa.RecordBatch) -> None:
    texts = batch.column(schema.TEXT).to_pylist()[:SCORED_DOCS]
    overall, per_dim = DistilledModels.load(model_dir).quality(texts)
    floor = float(np.median(overall))
    coherence_floor = float(np.quantile(per_dim["coherence"], 0.75))
    stage = _stage(
        "quality", model=str(model_dir), min_score=floor, dimensions=False,
        min_dimension_scores={"coherence": coherence_floor},
    )  # fmt: skip
    out = stage(batch)
    assert [f.name for f in stage.output_fields()] == ["score__quality"]
    assert "score__coherence" not in out.schema.names

    reasons = out.column(schema.DROP_REASON).to_pylist()
    details = out.column(schema.DROP_DETAIL).to_pylist()
    for i, (score, coherence) in enumerate(zip(overall, per_dim["coherence"], strict=True)):
        if score < floor:
            assert reasons[i] == "low_quality_score"
            assert details[i] == f"quality {score:.3f} < {floor}"
        elif coherence < coherence_floor:
            assert reasons[i] == "low_coherence"
            assert details[i].startswith("coherence ")
        else:
            assert reasons[i] is None
    assert reasons[SCORED_DOCS:] == ["empty_text", "empty_text"]
    assert "low_coherence" in reasons and None in reasons
    counters = stage.take_stats().counters
    assert counters["quality.dropped.low_quality_score"] == reasons.count("low_quality_score")
    assert counters["quality.dropped.low_coherence"] == reasons.count("low_coherence")


def test_rows_already_dropped_are_not_scored(model_dir: Path, batch: pa.RecordBatch) -> None:
    earlier = [("lang_not_allowed" if i % 3 == 0 else None) for i in range(batch.num_rows)]
    marked = schema.mark_drops(batch, earlier, [("fr 0.99" if r else None) for r in earlier])
    for name in ("quality", "domain"):
        stage = _stage(name, model=str(model_dir), **({"min_score": 5.0} if name == "quality" else {}))
        out = stage(marked)
        column = "score__quality" if name == "quality" else "domain"
        values = out.column(column).to_pylist()
        reasons = out.column(schema.DROP_REASON).to_pylist()
        details = out.column(schema.DROP_DETAIL).to_pylist()
        for i, reason in enumerate(earlier):
            if reason is not None:
                assert values[i] is None
                assert reasons[i] == "lang_not_allowed" and details[i] == "fr 0.99"
        assert stage.take_stats().counters[f"{name}.skipped_dropped"] == earlier.count("lang_not_allowed")


def test_domain_labels_confidence_and_drops(model_dir: Path, batch: pa.RecordBatch) -> None:
    stage = _stage("domain", model=str(model_dir), drop_domains=["e-commerce"], min_confidence=0.9)
    out = stage(batch)
    assert {f.name: f.type for f in stage.output_fields()} == {
        "domain": pa.string(),
        "domain_confidence": pa.float64(),
    }
    texts = batch.column(schema.TEXT).to_pylist()[:SCORED_DOCS]
    labels, confidence = DistilledModels.load(model_dir).domain(texts)
    domains = out.column("domain").to_pylist()
    confidences = out.column("domain_confidence").to_pylist()
    assert domains[:SCORED_DOCS] == labels  # unsure labels are kept, not replaced
    assert confidences[:SCORED_DOCS] == pytest.approx(confidence.tolist())
    assert domains[SCORED_DOCS:] == [None, None]
    reasons = out.column(schema.DROP_REASON).to_pylist()
    details = out.column(schema.DROP_DETAIL).to_pylist()
    for i, label in enumerate(labels):
        assert reasons[i] == ("domain_dropped" if label == "e-commerce" else None)
        if label == "e-commerce":
            assert details[i].startswith("e-commerce 0.")
    assert "e-commerce" in labels and len(set(labels)) > 1
    stats = stage.take_stats()
    assert stats.counters["domain.low_confidence"] == int((confidence < 0.9).sum())
    assert stats.counters["domain.dropped.domain_dropped"] == labels.count("e-commerce")
    assert sum(v for k, v in stats.counters.items() if k.startswith("domain.label.")) == SCORED_DOCS
    assert stats.moments["domain.confidence_pct"].count == SCORED_DOCS


def test_params_are_checked_against_the_taxonomy() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown domain 'shopping'; allowed: e-commerce, social-media"
    ):
        DomainStage.Params(model="m", drop_domains=["shopping"])
    with pytest.raises(
        ValidationError, match=r"unknown quality dimension 'fluency'; allowed: educational_value"
    ):
        QualityStage.Params(model="m", min_dimension_scores={"fluency": 2.0})
    with pytest.raises(ValidationError, match="outside the 0-5 score range"):
        QualityStage.Params(model="m", min_dimension_scores={"coherence": 6.0})
    with pytest.raises(ValidationError):
        QualityStage.Params(model="m", min_score=7.0)
    with pytest.raises(ValidationError):
        DomainStage.Params(model="m", min_confidence=1.5)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        QualityStage.Params(model="m", threshold=3.0)


def test_a_floor_on_a_dimension_without_a_model_fails_at_setup(model_dir: Path) -> None:
    stage = QualityStage(QualityStage.Params(model=str(model_dir), min_dimension_scores={"safety": 3.0}))
    with pytest.raises(ValueError, match=r"names \['safety'\].*only for \['coherence'\]"):
        stage.setup()


def test_models_are_loaded_once_per_process(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    real_load = fasttext_text.load_model

    def counting_load(path: Path) -> object:
        loaded.append(Path(path).name)
        return real_load(path)

    monkeypatch.setattr(fasttext_text, "load_model", counting_load)
    distilled_module.clear_cache()
    stages = [
        _stage("quality", model=str(model_dir)),
        _stage("domain", model=str(model_dir)),
        _stage("quality", model=str(model_dir), min_score=1.0),
    ]
    revived = pickle.loads(pickle.dumps(stages[0]))  # what an engine ships to a worker
    assert revived._models is None
    revived.setup()
    assert sorted(loaded) == ["domain.bin", "quality.bin", "quality__coherence.bin"]
    assert len({id(stage._models) for stage in [*stages, revived]}) == 1


def test_a_changed_model_file_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    with open(copy / "domain.bin", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ValueError, match=r"domain\.bin does not match its model card"):
        DistilledModels.load(copy)
    with pytest.raises(FileNotFoundError, match=r"model_card\.json is missing"):
        DistilledModels.load(tmp_path)


def test_a_batch_with_every_row_dropped_costs_no_prediction(model_dir: Path, batch: pa.RecordBatch) -> None:
    marked = schema.mark_drops(batch, ["exact_duplicate"] * batch.num_rows)
    quality = _stage("quality", model=str(model_dir), min_score=4.0)(marked)
    domain = _stage("domain", model=str(model_dir), drop_domains=["other"])(marked)
    assert quality.column("score__quality").null_count == batch.num_rows
    assert domain.column("domain").null_count == batch.num_rows
    assert set(domain.column(schema.DROP_REASON).to_pylist()) == {"exact_duplicate"}
