"""The command line as a user meets it: validate, run, rerun, verify, stages."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from corpusmill.cli import app

runner = CliRunner()


def _recipe(tmp_path: Path, extra_stage: str = "") -> Path:
    data = tmp_path / "docs.jsonl"
    texts = [
        "The museum opened a new wing for modern sculpture, and visitors queued along the river all morning.",
        "Farmers in the valley expect a late harvest because the spring rains arrived three weeks early.",
    ]
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: cli\ninput:\n  paths: [docs.jsonl]\nstages:\n"
        f"  - stage: langid\n{extra_stage}  - stage: tokenize\n  - stage: write_shards\n"
    )
    return recipe


def test_validate_accepts_a_good_recipe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(_recipe(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "valid recipe 'cli'" in result.output
    assert "langid_v1" in result.output


def test_validate_rejects_a_bad_recipe_with_file_and_field(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, extra_stage="    treshold: 3\n")
    result = runner.invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2
    assert str(recipe) in result.output
    assert "stages[0] (langid_v1).treshold: unknown field; allowed:" in result.output


def test_run_prints_summary_and_run_dir_then_rerun_does_nothing(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    out = tmp_path / "run"
    first = runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(out)])
    assert first.exit_code == 0, first.output
    assert f"run directory: {out}" in first.output
    assert "01-langid_v1" in first.output
    assert "documents kept: 2" in first.output
    second = runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(out)])
    assert second.exit_code == 0, second.output
    assert "already complete" in second.output
    verified = runner.invoke(app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
    assert "2 documents" in verified.output


def test_run_reports_missing_inputs_clearly(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    (tmp_path / "docs.jsonl").unlink()
    result = runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "docs.jsonl" in result.output


def test_stages_lists_every_builtin_stage_with_parameters() -> None:
    result = runner.invoke(app, ["stages"])
    assert result.exit_code == 0
    for name in (
        "extract_v1",
        "langid_v1",
        "heuristics_v1",
        "dedup_exact_v1",
        "dedup_minhash_v1",
        "tokenize_v1",
    ):
        assert name in result.output
    assert "threshold=0.8" in result.output


def test_options_after_double_dash_reach_the_engine(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    args = [
        "run",
        str(recipe),
        "--engine",
        "local",
        "--output",
        str(tmp_path / "r"),
        "--",
        "--runner=FlinkRunner",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "engine options ['--runner=FlinkRunner'] only apply to --engine beam" in result.output


def test_shards_inspect_shows_counts_and_catches_tampering(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(out)]).exit_code == 0
    shown = runner.invoke(app, ["shards", "inspect", str(out / "shards"), "--sample", "2"])
    assert shown.exit_code == 0, shown.output
    assert "documents: 2" in shown.output
    assert "The museum opened a new wing" in shown.output and "expect a late harvest" in shown.output
    assert "order hash-range seed 0" in shown.output
    assert "checksums: OK" in shown.output
    shard = next((out / "shards").glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    tampered = runner.invoke(app, ["shards", "inspect", str(out / "shards")])
    assert tampered.exit_code == 1
    assert "sha256" in tampered.output


def test_run_writes_a_report_and_report_rebuilds_it(tmp_path: Path) -> None:
    import shutil

    recipe = _recipe(tmp_path)
    out = tmp_path / "run"
    ran = runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(out)])
    assert ran.exit_code == 0 and f"report: {out / 'report' / 'index.html'}" in ran.output
    data = json.loads((out / "report" / "mixture.json").read_text())
    shutil.rmtree(out / "report")
    rebuilt = runner.invoke(app, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads((out / "report" / "mixture.json").read_text()) == data
    assert runner.invoke(app, ["report", str(tmp_path / "missing")]).exit_code == 1
