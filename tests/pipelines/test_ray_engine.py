"""The demo recipe on a real local Ray instance, held to the same output as the in-process engine."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import load_recipe, parse_recipe
from corpusmill.demo.corpus import write_demo_corpus
from corpusmill.pipelines.runner import run_recipe
from corpusmill.pipelines.verify import verify_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_recipe(tmp_path_factory: pytest.TempPathFactory):
    sample = tmp_path_factory.mktemp("sample")
    corpus = write_demo_corpus(sample, num_files=2)
    data = load_recipe(REPO / "recipes" / "demo.yaml").model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    data["input"]["paths"] = [str(sample / "*.warc.gz")]
    return parse_recipe(data), corpus.truth()


@pytest.mark.ray
def test_demo_recipe_on_ray_matches_the_local_engine(demo_recipe, tmp_path: Path) -> None:
    demo_recipe, truth = demo_recipe
    ray_run = run_recipe(demo_recipe, engine="ray", output=tmp_path / "ray", num_cpus=2)
    local_run = run_recipe(demo_recipe, engine="local", output=tmp_path / "local")

    ray_docs = pq.read_table(ray_run.run_dir / "documents").sort_by("id")
    local_docs = pq.read_table(local_run.run_dir / "documents").sort_by("id")
    assert ray_docs.num_rows > 100
    assert ray_docs.equals(local_docs)

    def shard_digests(run_dir: Path) -> list[str]:
        manifest = json.loads((run_dir / "shards" / "manifest.json").read_text())
        return [s["bin_sha256"] for s in manifest["shards"]]

    assert shard_digests(ray_run.run_dir) == shard_digests(local_run.run_dir)
    assert ray_run.summary == local_run.summary

    reasons = {row.label: row.dropped for row in ray_run.summary.stages}
    assert reasons["04-dedup_exact_v1"].get("exact_duplicate", 0) > 0
    assert reasons["05-dedup_minhash_v1"].get("near_duplicate", 0) > 0
    assert sum(reasons["03-heuristics_v1"].values()) > 0
    assert verify_run(ray_run.run_dir).problems == []

    _assert_curation_matches_the_generator_truth(ray_run.run_dir, truth)


def _assert_curation_matches_the_generator_truth(run_dir: Path, truth: list[dict]) -> None:
    """The generator knows which pages are spam, good, or copies; the pipeline must agree with it."""
    kept = set(pq.read_table(run_dir / "documents", columns=["id"]).column("id").to_pylist())
    rejected = pq.read_table(run_dir / "rejected", columns=["id", "drop_reason"]).to_pylist()
    reason = {row["id"]: row["drop_reason"] for row in rejected}
    by_url = {row["url"]: row for row in truth}

    def outcome(row: dict) -> str:
        doc_id = row["warc_record_id"].strip("<>")
        return "kept" if doc_id in kept else reason.get(doc_id, "not read")

    junk = [outcome(r) for r in truth if r["kind"] in ("spam", "low_quality")]
    assert sum(o != "kept" for o in junk) >= 0.9 * len(junk)
    good = [outcome(r) for r in truth if r["kind"] == "good" and r["lang"] in ("en", "de", "fr", "es")]
    survived = [o for o in good if o in ("kept", "exact_duplicate", "near_duplicate")]
    assert len(survived) >= 0.95 * len(good)
    # Of every original and its copies, exactly one survives when the original passed the filters.
    for kind, why in (("exact_duplicate", "exact_duplicate"), ("near_duplicate", "near_duplicate")):
        copies = [r for r in truth if r["kind"] == kind and r["duplicate_of"] in by_url]
        assert copies
        for copy in copies:
            original = by_url[copy["duplicate_of"]]
            if outcome(original) in ("kept", why):
                outcomes = {outcome(original), outcome(copy)}
                assert "kept" in outcomes or outcomes <= {"exact_duplicate", "near_duplicate"}, (
                    copy,
                    outcomes,
                )
                assert outcomes != {"kept"}, f"both {copy['url']} and its original were kept"
