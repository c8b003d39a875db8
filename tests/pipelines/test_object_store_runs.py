"""Run directories on object storage: `--output s3://...` against a real S3 server (moto's, on loopback).

An object store has no rename: every file of the run is written locally under a temporary name and put as
its final object in one request, markers after their part's files and `manifest.json` last, so a reader
never sees a torn object and a killed run resumes from the markers it finds there. The run must equal, file
for file, the same recipe run into a local directory, on every engine; a driver killed mid-run and run
again must too; and `verify` checks the run where it lies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import run_command
from typer.testing import CliRunner

from corpusmill.cli import app
from corpusmill.core.location import run_path
from corpusmill.core.recipe import Recipe, load_recipe, parse_recipe
from corpusmill.demo.corpus import write_demo_corpus
from corpusmill.pipelines.runner import RunResult, run_recipe
from s3kit import Bucket

REPO = Path(__file__).resolve().parents[2]
# The local engine's run into S3 is the killed-and-resumed run below, checked the same way.
ENGINES = [
    pytest.param("ray", marks=pytest.mark.ray),
    pytest.param("beam", marks=pytest.mark.beam),
]


def _files(run_dir) -> list[dict]:
    return json.loads((run_path(run_dir) / "manifest.json").read_text())["files"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, RunResult]:
    """The demo recipe over a local sample crawl, and its run into a local directory."""
    sample = tmp_path_factory.mktemp("sample")
    write_demo_corpus(sample, num_files=2)
    data = load_recipe(REPO / "recipes" / "demo.yaml").model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    for stage in data["stages"]:
        if stage["stage"].startswith("extract"):
            stage["timeout_s"] = 120  # a slow page on a busy machine must not make the runs differ
    data["input"]["paths"] = [str(sample / "*.warc.gz")]
    recipe = parse_recipe(data)
    reference = run_recipe(recipe, engine="local", output=tmp_path_factory.mktemp("local"))
    return recipe, reference


@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_into_s3_equals_the_run_into_a_local_directory(engine: str, demo, s3_bucket: Bucket) -> None:
    recipe, reference = demo
    uri = s3_bucket.uri(f"runs/demo-{engine}")
    run = run_recipe(recipe, engine=engine, output=uri, num_cpus=2)
    assert str(run.run_dir) == uri
    assert _files(uri) == _files(reference.run_dir)
    assert run.summary == reference.summary
    keys = s3_bucket.fs.find(s3_bucket.uri(f"runs/demo-{engine}"))
    assert not [key for key in keys if key.endswith(".tmp")]  # nothing but whole objects
    assert any(key.endswith("report/index.html") for key in keys)
    result = CliRunner().invoke(app, ["verify", uri])
    assert result.exit_code == 0, result.output
    again = run_recipe(recipe, engine=engine, output=uri, num_cpus=2)
    assert again.already_complete


def _kill_after_a_later_marker(command: list[str], bucket: Bucket, prefix: str, timeout: float = 240) -> None:
    """Start the run, SIGKILL its process group once a part of its second step is finished on S3."""
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            bucket.fs.invalidate_cache()
            if bucket.fs.glob(f"{bucket.name}/{prefix}/stages/02-*/*.done.json"):
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode() if process.stderr else ""
    assert not bucket.fs.exists(f"{bucket.name}/{prefix}/manifest.json"), "the run finished before the kill"


def test_a_run_killed_on_s3_resumes_to_the_same_bytes(demo, s3_bucket: Bucket, tmp_path: Path) -> None:
    recipe, reference = demo
    recipe_file = tmp_path / "demo.yaml"
    recipe_file.write_text(recipe.to_yaml())
    uri = s3_bucket.uri("runs/killed")
    _kill_after_a_later_marker(run_command(recipe_file, "local", uri), s3_bucket, "runs/killed")
    resumed = subprocess.run(run_command(recipe_file, "local", uri), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    s3_bucket.fs.invalidate_cache()
    assert _files(uri) == _files(reference.run_dir)
    keys = s3_bucket.fs.find(uri)
    assert not [key for key in keys if key.endswith(".tmp")]  # the killed run's partial writes are gone
    assert any(key.endswith("report/index.html") for key in keys)
    verify = subprocess.run(
        [sys.executable, "-m", "corpusmill.cli", "verify", uri], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = run_recipe(recipe, engine="local", output=uri)
    assert again.already_complete and again.summary == reference.summary


def test_an_incremental_run_into_s3_builds_on_a_local_base(s3_bucket: Bucket, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows = [
        {"id": i, "text": f"Report {i} on the harbour, the ships and the tides of {i % 7}."}
        for i in range(30)
    ]
    for name in ("a", "b"):
        (inputs / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = parse_recipe(
        {
            "name": "s3-incremental",
            "input": {"paths": [str(inputs / "*.jsonl")], "part_bytes": 1},
            "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}, {"stage": "write_shards"}],
            "output": {"batch_size": 16, "keep_rejected": True},
        }
    )
    base = run_recipe(recipe, engine="local", output=tmp_path / "base")
    (inputs / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    full = run_recipe(recipe, engine="local", output=tmp_path / "full")
    uri = s3_bucket.uri("runs/incremental")
    run = run_recipe(recipe, engine="local", output=uri, base=base.run_dir)
    assert _files(uri) == _files(full.run_dir)
    increment = json.loads((run_path(uri) / "stats.json").read_text())["incremental"]
    assert (increment["added_files"], increment["reused_parts"]) == (["c.jsonl"], 2)
    assert run.summary == full.summary
