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
    write_demo_corpus(sample, num_files=2)
    data = load_recipe(REPO / "recipes" / "demo.yaml").model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    data["input"]["paths"] = [str(sample / "*.warc.gz")]
    return parse_recipe(data)


@pytest.mark.ray
def test_demo_recipe_on_ray_matches_the_local_engine(demo_recipe, tmp_path: Path) -> None:
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
