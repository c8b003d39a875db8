"""Recipes whose every field is valid but that cannot be right are refused, naming the stage and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corpusmill.core.recipe import RecipeError, parse_recipe
from corpusmill.filters.langid import bundled_model_path
from corpusmill.filters.lid176 import LID176, LID176_NAMES

# JSONL input with a language column, so every stage below finds the columns it needs.
INPUT = {"paths": ["/data/*.jsonl"], "lang_field": "language"}
MIX_BY_LANG = {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 1.0}, "default_multiplier": 2.0}


def _problems(*stages: Any, input: dict[str, Any] | None = None) -> list[str]:
    """The problems validation finds in a recipe of these stages (none when it is accepted)."""
    data = {"name": "checked", "input": input or INPUT, "stages": list(stages)}
    try:
        parse_recipe(data)
    except RecipeError as exc:
        return exc.problems
    return []


def _one(problems: list[str], *fragments: str) -> str:
    """The single problem holding every fragment (so the test fails on a recipe that was accepted)."""
    found = [p for p in problems if all(f in p for f in fragments)]
    assert len(found) == 1, problems
    return found[0]


def test_a_stage_after_the_sink_is_refused() -> None:
    problems = _problems("tokenize", "write_shards", {"stage": "langid", "languages": ["en"]})
    message = _one(problems, "stages[2] (langid_v1)")
    assert "after the sink stages[1] (write_shards_v" in message
    assert "`verify` would fail" in message
    assert "move 'langid' before 'write_shards'" in message


@pytest.mark.parametrize("dedup", ["dedup_exact", "dedup_minhash"])
def test_deduplication_after_the_mixture_is_refused(dedup: str) -> None:
    problems = _problems("tokenize", MIX_BY_LANG, dedup, "write_shards")
    message = _one(problems, f"stages[2] ({dedup}_v")
    assert "after stages[1] (mix_v" in message and "up-sampled copies" in message
    assert f"move '{dedup}' before 'mix'" in message


def test_deduplication_before_the_mixture_is_fine() -> None:
    assert _problems("dedup_exact", "tokenize", MIX_BY_LANG, "write_shards") == []


@pytest.mark.parametrize(
    ("written", "meant"), [("english", "en"), ("EN", "en"), ("en-US", "en"), ("deu", "de"), ("Deutsch", "de")]
)
def test_a_language_langid_does_not_know_is_refused_with_the_code_meant(written: str, meant: str) -> None:
    problems = _problems({"stage": "langid", "languages": ["fr", written]})
    message = _one(problems, "stages[0] (langid_v1).languages")
    assert f"{written!r} is not a lid.176 language code" in message
    assert f"did you mean '{meant}'?" in message


def test_a_language_without_a_close_match_points_to_the_list() -> None:
    message = _one(_problems({"stage": "langid", "languages": ["xx"]}), "stages[0] (langid_v1).languages")
    assert "allowed: the 176 lid.176 language codes listed in corpusmill/filters/lid176.py" in message


def test_heuristics_languages_are_checked_against_what_langid_writes() -> None:
    langid = {"stage": "langid", "languages": ["en", "de"]}
    problems = _problems(langid, {"stage": "heuristics", "languages": ["en", "german"]})
    message = _one(problems, "stages[1] (heuristics_v1).languages")
    assert "'german' is not a lid.176 language code (what stages[0] (langid_v1) writes to 'lang')" in message
    assert "did you mean 'de'?" in message
    # Without langid, `lang` comes from the input's own column, whose codes nobody declared: not checked.
    assert _problems({"stage": "heuristics", "languages": ["eng"]}) == []


def _mix(**params: Any) -> list[str]:
    scored = {"stage": "domain", "model": "classifiers/"}
    return _problems(scored, "tokenize", {"stage": "mix", **params}, "write_shards")


@pytest.mark.parametrize(
    ("params", "field", "written", "meant"),
    [
        ({"multipliers": {"technolgy": 2.0, "science": 2.0}}, "multipliers", "technolgy", "technology"),
        ({"budget": "1M", "weights": {"ecommerce": 0.5, "news": 0.5}}, "weights", "ecommerce", "e-commerce"),
        (
            {"multipliers": {"news": 1.0}, "min_quality": {"social_media": 2.0}},
            "min_quality",
            "social_media",
            "social-media",
        ),
    ],
)
def test_a_mixture_domain_no_classifier_writes_is_refused(
    params: dict[str, Any], field: str, written: str, meant: str
) -> None:
    message = _one(_mix(**params), "stages[2] (mix_v", f").{field}: ")
    assert (
        f"{written!r} is not a domain of the taxonomy (what stages[0] (domain_v1) writes to 'domain')"
        in message
    )
    assert f"did you mean '{meant}'?" in message


def test_a_domain_without_a_close_match_lists_the_taxonomy() -> None:
    message = _one(_mix(multipliers={"sci": 2.0}), "stages[2] (mix_v", ").multipliers: ")
    assert "allowed: academic-research, arts-and-culture, code," in message


def test_the_min_quality_wildcard_and_the_unlabelled_domain_stay_allowed() -> None:
    params = {"multipliers": {"science": 2.0, "unknown": 0.5}, "unlabelled_domain": "unknown"}
    assert _mix(**params, min_quality={"*": 1.0, "unknown": 3.0}) == []


def test_a_wildcard_among_the_multipliers_is_refused() -> None:
    # It would be one more domain named "*", holding no document: every other domain keeps rate 1.
    message = _one(_mix(multipliers={"*": 2.0}), "stages[2] (mix_v", ").multipliers: ")
    assert "wildcard only in min_quality" in message and "default_multiplier" in message


@pytest.mark.parametrize(
    ("first", "second", "name"),
    [
        ({"stage": "langid", "languages": ["en"]}, {"stage": "langid", "min_score": 0.5}, "langid"),
        ("dedup_minhash_v1", "dedup_minhash", "dedup_minhash"),  # versions do not make it another stage
    ],
)
def test_a_stage_listed_twice_is_refused(first: Any, second: Any, name: str) -> None:
    problems = _problems(first, "dedup_exact", second)
    message = _one(problems, "stages[2] (", "more than once")
    assert f"'{name}' is listed more than once (stages[0], stages[2])" in message
    assert "merge the parameters into one entry" in message


def test_every_problem_of_a_recipe_is_reported_together() -> None:
    problems = _problems(
        {"stage": "langid", "languages": ["english"]},
        {"stage": "domain", "model": "classifiers/"},
        "tokenize",
        {"stage": "mix", "multipliers": {"technolgy": 2.0}},
        "dedup_exact",
        "write_shards",
        {"stage": "langid"},
    )
    for fragment in ("after the sink", "deduplicates after", "more than once", "'english'", "'technolgy'"):
        _one(problems, fragment)


def test_the_lid176_codes_are_the_models_labels() -> None:
    fasttext = pytest.importorskip("fasttext")
    model = fasttext.load_model(str(bundled_model_path()))
    labels = {label.removeprefix("__label__") for label in model.get_labels()}
    assert set(LID176_NAMES) == labels and len(labels) == 176
    assert len({name.casefold() for name in LID176_NAMES.values()}) == 176  # every name suggests one code


def test_short_codes_are_not_guessed_at() -> None:
    # `nb` (Norwegian Bokmål) is one letter from `pnb` (Western Punjabi); only a listed alias may answer it.
    assert LID176.suggest("nb") == "no"
    assert LID176.suggest("qq") is None


def test_validate_on_the_command_line_shows_every_problem(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from corpusmill.cli import app

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: cli\ninput: {paths: [docs.jsonl]}\nstages:\n"
        "  - {stage: langid, languages: [english]}\n  - tokenize\n  - write_shards\n  - dedup_exact\n"
    )
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2
    shown = " ".join(result.output.split())  # the console wraps long lines
    assert "stages[0] (langid_v1).languages: 'english' is not a lid.176 language code" in shown
    assert "did you mean 'en'?" in shown
    assert "stages[3] (dedup_exact_v1): comes after the sink stages[2] (write_shards_v" in shown
