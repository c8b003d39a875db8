"""The whole classifier loop through the CLI: annotate a run's sample, distill, then score and mix in a recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from typer.testing import CliRunner

from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES
from corpusmill.cli import app

runner = CliRunner()


def _write_corpus(shared_data: Path, out: Path, count: int = 90) -> Path:
    pages = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        text = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if text and len(text) > 200:
            pages.append({"id": f"wcxb-{path.stem}", "text": text})
        if len(pages) == count:
            break
    out.mkdir(parents=True)
    (out / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages), encoding="utf-8")
    return out / "pages.jsonl"


def _recipe(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def test_annotate_distill_score_and_mix_from_the_command_line(shared_data: Path, tmp_path: Path) -> None:
    corpus = _write_corpus(shared_data, tmp_path / "input")
    first = _recipe(
        tmp_path / "curate.yaml",
        {"name": "curate", "input": {"paths": [str(corpus)]}, "stages": [{"stage": "tokenize"}]},
    )
    assert (
        runner.invoke(
            app, ["run", str(first), "--engine", "local", "--output", str(tmp_path / "run")]
        ).exit_code
        == 0
    )

    model = tmp_path / "annotator"
    assert runner.invoke(app, ["demo-annotator", str(model)]).exit_code == 0
    args = ["annotate", str(tmp_path / "run"), "--model", str(model), "--sample", "80", "--temperature", "1"]
    annotated = runner.invoke(app, [*args, "--max-chars", "1500", "--threads", "1"])
    assert annotated.exit_code == 0, annotated.output
    assert "0 cached, 80 asked -> 80 ok" in annotated.output
    again = runner.invoke(app, [*args, "--max-chars", "1500", "--threads", "1"])
    assert "80 cached, 0 asked" in again.output  # the cache answers a rerun

    classifiers = tmp_path / "classifiers"
    distilled = runner.invoke(
        app,
        ["distill", str(tmp_path / "run"), "--output", str(classifiers), "--bucket", "5000", "--dim", "8"],
    )
    assert distilled.exit_code == 0, distilled.output
    card = json.loads((classifiers / "model_card.json").read_text())
    assert card["split"]["documents"]["train"] + card["split"]["documents"]["holdout"] == 80
    assert "domain" in card["models"] and "quality" in card["models"]

    second = _recipe(
        tmp_path / "mix.yaml",
        {
            "name": "mix",
            "input": {"paths": [str(tmp_path / "run" / "documents" / "*.parquet")], "format": "parquet"},
            "stages": [
                {"stage": "quality", "model": str(classifiers)},
                {"stage": "domain", "model": str(classifiers)},
                {"stage": "tokenize"},
                {"stage": "mix", "budget": "40K", "multipliers": {"e-commerce": 0.3, "science": 2.0}},
                {"stage": "write_shards", "max_tokens_per_shard": 10000},
            ],
        },
    )
    ran = runner.invoke(app, ["run", str(second), "--engine", "local", "--output", str(tmp_path / "mixed")])
    assert ran.exit_code == 0, ran.output
    documents = pq.read_table(tmp_path / "mixed" / "documents").to_pydict()
    assert set(documents["domain"]) <= set(DOMAIN_NAMES)
    assert all(0.0 <= s <= 5.0 for s in documents["score__quality"])
    assert all(f"score__{d}" in documents for d in DIMENSION_NAMES)
    stats = json.loads((tmp_path / "mixed" / "stats.json").read_text())
    assert abs(stats["tokens_written"] - 40_000) <= max(
        documents["token_count"]
    )  # within one document of plan
    assert runner.invoke(app, ["verify", str(tmp_path / "mixed")]).exit_code == 0
