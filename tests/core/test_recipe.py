"""Recipes: valid ones normalise and hash stably; bad ones fail naming the file, the field and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpusmill.core.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[2]

GOOD = """
name: small
input:
  paths: ["data/*.jsonl"]
stages:
  - stage: langid
    languages: [en]
  - dedup_exact
  - stage: tokenize
  - stage: write_shards
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_good_recipe_resolves_versions_defaults_and_paths(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, GOOD))
    assert [s.stage for s in recipe.stages] == [
        "langid_v1",
        "dedup_exact_v1",
        "tokenize_v1",
        "write_shards_v3",
    ]
    assert recipe.stages[0].params["languages"] == ["en"]
    assert "min_score" in recipe.stages[0].params  # defaults are filled in, so they are part of the hash
    assert recipe.input.paths == [str((tmp_path / "data/*.jsonl").resolve())]


def test_fingerprint_is_stable_and_follows_params(tmp_path: Path) -> None:
    first = load_recipe(_write(tmp_path, GOOD)).fingerprint()
    assert load_recipe(_write(tmp_path, GOOD)).fingerprint() == first
    changed = load_recipe(_write(tmp_path, GOOD.replace("[en]", "[de]"))).fingerprint()
    assert changed != first
    described = load_recipe(_write(tmp_path, "description: words\n" + GOOD)).fingerprint()
    assert described == first


def test_the_shipped_demo_recipe_is_valid() -> None:
    recipe = load_recipe(REPO / "recipes" / "demo.yaml")
    assert [s.stage.rsplit("_v", 1)[0] for s in recipe.stages] == [
        "extract",
        "langid",
        "heuristics",
        "dedup_exact",
        "dedup_minhash",
        "tokenize",
        "write_shards",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("name: small", "name: small\nengine: spark"),
            ["engine: unknown field; allowed: name,"],
        ),
        (
            GOOD.replace("languages: [en]", "languagez: [en]"),
            ["stages[0] (langid_v1).languagez: unknown field; allowed: model_path"],
        ),
        (
            GOOD.replace("- dedup_exact", "- stage: dedupe"),
            ["stages[1].stage: unknown stage 'dedupe'; allowed:", "dedup_exact"],
        ),
        (
            GOOD.replace("languages: [en]", "min_score: 2"),
            ["stages[0] (langid_v1).min_score:", "less than or equal to 1"],
        ),
        (GOOD.replace('paths: ["data/*.jsonl"]', "paths: []"), ["input.paths:", "at least 1 item"]),
        (GOOD.replace("name: small", "name: 'bad name!'"), ["name: String should match pattern"]),
        (
            "name: x\ninput: {paths: [a.warc.gz]}\nstages: [{stage: langid}]\n",
            ["stages[0] (langid_v1): needs column 'text'"],
        ),
        (
            "name: x\ninput: {paths: [a.warc.gz]}\nstages: [{stage: extract}, {stage: write_shards}]\n",
            ["needs column 'tokens'", "add 'tokenize' before it"],
        ),
        ("name: [unclosed\n", ["not valid YAML"]),
        ("- just a list\n", ["top level must be a mapping"]),
    ],
)
def test_bad_recipes_say_where_and_what(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("languages: [en]", "languagez: [en]").replace("- dedup_exact", "- stage: nope")
    with pytest.raises(RecipeError) as info:
        load_recipe(_write(tmp_path, text))
    assert len(info.value.problems) == 2


def test_missing_file_is_a_recipe_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read the file"):
        load_recipe(tmp_path / "absent.yaml")


def test_beam_options_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    plain = load_recipe(_write(tmp_path, GOOD))
    with_beam = load_recipe(
        _write(tmp_path, GOOD + "beam:\n  options: [--runner=FlinkRunner, --parallelism=8]\n")
    )
    assert with_beam.beam.options == ["--runner=FlinkRunner", "--parallelism=8"]
    assert with_beam.fingerprint() == plain.fingerprint()
    with pytest.raises(
        RecipeError, match=re.escape("beam.options: Value error, 'FlinkRunner' is not a pipeline option")
    ):
        load_recipe(_write(tmp_path, GOOD + "beam:\n  options: [FlinkRunner]\n"))


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.stages and recipe.fingerprint()


def test_heuristics_on_warc_input_without_langid_is_refused(tmp_path: Path) -> None:
    # WARC responses carry no language, so the rules (configured per language) would silently apply to nothing.
    text = "name: x\ninput: {paths: [a.warc.gz]}\nstages: [{stage: extract}, {stage: heuristics}]\n"
    with pytest.raises(RecipeError, match=r"needs column 'lang'.*add 'langid' before it"):
        load_recipe(_write(tmp_path, text))
    jsonl = "name: x\ninput: {paths: [a.jsonl], lang_field: language}\nstages: [{stage: heuristics}]\n"
    assert load_recipe(_write(tmp_path, jsonl)).stages[0].stage == "heuristics_v1"
