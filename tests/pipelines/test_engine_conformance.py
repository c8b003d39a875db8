"""One recipe, every engine, the same run: Ray and Beam held to the in-process engine's output.

Each recipe runs once on the in-process engine (the reference) and once per distributed engine. Kept ids and
texts, per-stage counts with drop reasons, rejected documents and the shard bytes must all be identical: the
shuffle and the mixture's sampling are functions of document ids and seeds, so the bytes are defined. The
real-data recipe also mixes by language (down-sampling English, repeating the rest) to hold the `mix` stage's
accounting rounds and copies to the same standard.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import Recipe, load_recipe, parse_recipe
from corpusmill.demo.corpus import write_demo_corpus
from corpusmill.pipelines import group_step
from corpusmill.pipelines.runner import RunResult, run_recipe
from corpusmill.pipelines.verify import verify_run

REPO = Path(__file__).resolve().parents[2]
ENGINES = [pytest.param("ray", marks=pytest.mark.ray), pytest.param("beam", marks=pytest.mark.beam)]


def _with_inputs(recipe: Recipe, paths: list[str], **input_options: object) -> Recipe:
    data = recipe.model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    for stage in data["stages"]:
        if stage["stage"].startswith("extract"):
            # A busy CI machine must not turn a slow page into a timeout on one engine and not the other.
            stage["timeout_s"] = 120
    data["input"].update(paths=paths, **input_options)
    return parse_recipe(data)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, list[dict], RunResult]:
    sample = tmp_path_factory.mktemp("sample")
    corpus = write_demo_corpus(sample, num_files=2)
    recipe = _with_mix(
        _with_inputs(load_recipe(REPO / "recipes" / "demo.yaml"), [str(sample / "*.warc.gz")]),
        {"domain_column": "lang", "multipliers": {"en": 1.0}, "default_multiplier": 2.5},  # repeats only
    )
    reference = run_recipe(recipe, engine="local", output=tmp_path_factory.mktemp("demo-local"))
    return recipe, corpus.truth(), reference


def _with_mix(recipe: Recipe, mix: dict) -> Recipe:
    """The recipe with a `mix` stage before its last stage (the shard writer)."""
    data = recipe.model_dump(mode="json")
    stages = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    data["stages"] = [*stages[:-1], {"stage": "mix", **mix}, stages[-1]]
    return parse_recipe(data)


@pytest.fixture(scope="module")
def real_data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, RunResult]:
    recipe = _with_inputs(
        load_recipe(REPO / "recipes" / "demo.yaml"),
        [
            str(shared_data / "warc" / "dolma-sample-000*.warc.gz"),
            str(shared_data / "warc" / "whirlwind.warc.gz"),
            str(shared_data / "wcxb-dev" / "html" / "00[0-4]?.html.gz"),
        ],
        format="auto",
        part_bytes=1_000_000,
    )
    recipe = _with_mix(
        recipe, {"domain_column": "lang", "multipliers": {"en": 0.6}, "default_multiplier": 2.5}
    )
    reference = run_recipe(recipe, engine="local", output=tmp_path_factory.mktemp("real-local"))
    return recipe, reference


def _assert_same_run(run: RunResult, reference: RunResult) -> None:
    docs = pq.read_table(run.run_dir / "documents").sort_by("id")
    expected = pq.read_table(reference.run_dir / "documents").sort_by("id")
    assert docs.column("id").to_pylist() == expected.column("id").to_pylist()
    assert docs.equals(expected)
    assert run.summary == reference.summary
    rejected = pq.read_table(run.run_dir / "rejected").sort_by("id")
    assert rejected.equals(pq.read_table(reference.run_dir / "rejected").sort_by("id"))
    assert _shard_bytes(run.run_dir) == _shard_bytes(reference.run_dir)
    assert verify_run(run.run_dir).problems == []


def _shard_bytes(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())
    digests = {}
    for shard in manifest["shards"]:
        for name in (shard["bin_file"], shard["idx_file"]):
            digests[name] = hashlib.sha256((run_dir / "shards" / name).read_bytes()).hexdigest()
    return digests


@pytest.mark.parametrize("engine", ENGINES)
def test_demo_recipe_gives_the_same_run_on_every_engine(engine: str, demo, tmp_path: Path) -> None:
    recipe, _, reference = demo
    run = run_recipe(recipe, engine=engine, output=tmp_path / engine, num_cpus=2)
    _assert_same_run(run, reference)
    _assert_mixture_on_plan(run.run_dir)


@pytest.mark.parametrize("engine", ENGINES)
def test_real_crawl_data_gives_the_same_run_on_every_engine(
    engine: str, real_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe, reference = real_data
    # The reference resolves its small dedup step in one task; here every phase is an engine phase, so the
    # two schedules are held to each other too.
    monkeypatch.setattr(group_step, "SERIAL_MAX_KEYS", 0)
    # Enough real documents reach the mix for the comparison to mean something. (Not the documents out of
    # the mix: ids of HTML files derive from their absolute path, so which ones the mix samples depends on
    # where the data is checked out.)
    (mixed,) = [stage for stage in reference.summary.stages if stage.label.endswith("mix_v2")]
    assert mixed.docs_in > 30 and reference.summary.documents_out > 0
    run = run_recipe(recipe, engine=engine, output=tmp_path / engine, num_cpus=2)
    _assert_same_run(run, reference)
    _assert_mixture_on_plan(run.run_dir)
    assert _phases(run.run_dir) > _phases(reference.run_dir)


def _phases(run_dir: Path) -> int:
    timings = json.loads((run_dir / "timings.json").read_text())
    return sum(len(step["phases"]) for run in timings["passes"] for step in run["steps"])


def _assert_mixture_on_plan(run_dir: Path) -> None:
    """Every language lands within one document of its planned tokens."""
    (plan,) = json.loads((run_dir / "stats.json").read_text())["plans"].values()
    rows = pq.read_table(run_dir / "documents", columns=["lang", "token_count"]).to_pylist()
    for domain in plan["mixture"]["domains"]:
        counts = [r["token_count"] for r in rows if r["lang"] == domain["domain"]]
        assert abs(sum(counts) - domain["expected_tokens"]) <= max(counts, default=0), domain


def test_demo_curation_matches_the_generator_truth(demo) -> None:
    """The generator knows which pages are spam, good, or copies; the pipeline must agree with it."""
    _, truth, reference = demo
    run_dir = reference.run_dir
    reasons = {row.label: row.dropped for row in reference.summary.stages}
    assert sum(reasons["03-heuristics_v1"].values()) > 0
    # The generator knows records by WARC-Record-ID: the documents' `source_id`.
    kept = set(pq.read_table(run_dir / "documents", columns=["source_id"]).column("source_id").to_pylist())
    rejected = pq.read_table(run_dir / "rejected", columns=["source_id", "drop_reason"]).to_pylist()
    reason = {row["source_id"]: row["drop_reason"] for row in rejected}
    by_url = {row["url"]: row for row in truth}

    def outcome(row: dict) -> str:
        doc_id = row["warc_record_id"].strip("<>")
        return "kept" if doc_id in kept else reason.get(doc_id, "not read")

    junk = [outcome(r) for r in truth if r["kind"] in ("spam", "low_quality")]
    assert sum(o != "kept" for o in junk) >= 0.9 * len(junk)
    good = [outcome(r) for r in truth if r["kind"] == "good" and r["lang"] in ("en", "de", "fr", "es")]
    survived = [o for o in good if o in ("kept", "exact_duplicate", "near_duplicate")]
    assert len(survived) >= 0.95 * len(good)
    # Of an original and its copy, exactly one survives when the original passed the filters.
    for kind in ("exact_duplicate", "near_duplicate"):
        copies = [r for r in truth if r["kind"] == kind and r["duplicate_of"] in by_url]
        assert copies
        for copy in copies:
            original = by_url[copy["duplicate_of"]]
            outcomes = {outcome(original), outcome(copy)}
            if outcome(original) in ("kept", kind):
                assert outcomes != {"kept"}, f"both {copy['url']} and its original were kept"
                assert "kept" in outcomes or outcomes <= {"exact_duplicate", "near_duplicate"}, (
                    copy,
                    outcomes,
                )
