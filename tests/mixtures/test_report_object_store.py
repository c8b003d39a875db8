"""`report` and `plan` on a finished run copied to object storage (a real S3 server: moto's, on loopback).

Runs are written locally and copied to the store; the report rebuilt there from the copy must be the local
run's report, byte for byte but for the run's own location, and must be written back beside it as whole
objects. A run built on a base finds the base beside it on the store. `plan` reads the accounting there.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from corpusmill.cli import app
from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import run_recipe
from s3kit import Bucket

runner = CliRunner()
PREFIX = "report-object-store"
WORDS = ("river", "garden", "market", "winter", "school", "bridge", "forest", "music", "letter", "island")
REPORT_FILES = (
    "index.html",
    "mixture.json",
    "samples.json",
)  # and the sample pages under samples/, documents/


def _write(inputs: Path, domain: str, count: int) -> None:
    rng = random.Random(domain + str(count))
    rows = [
        {
            "id": f"{domain}-{i:03d}",
            "domain": domain,
            "text": " ".join(rng.choices(WORDS, k=rng.randint(10, 60))),
        }
        for i in range(count)
    ]
    (inputs / f"{domain}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _recipe_data(inputs: Path, budget: int = 2000) -> dict:
    return {
        "name": "report-s3",
        "input": {"paths": [str(inputs / "*")], "lang_field": "domain", "part_bytes": 1},
        "stages": [
            {"stage": "tokenize"},
            {
                "stage": "mix",
                "domain_column": "lang",
                "budget": budget,
                "weights": {"news": 0.6, "shop": 0.4},
            },
            {"stage": "write_shards"},
        ],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base run (three domains and one unreadable file) and a run built on it with one domain grown."""
    root = tmp_path_factory.mktemp("report-s3")
    inputs = root / "in"
    inputs.mkdir()
    for domain, count in {"news": 40, "shop": 25, "science": 15}.items():
        _write(inputs, domain, count)
    pq.write_table(pa.table({"body": ["nothing to read"]}), inputs / "bad.parquet")
    recipe = parse_recipe(_recipe_data(inputs))
    base = root / "runs" / "base"
    run_recipe(recipe, engine="local", output=base)
    _write(inputs, "news", 55)
    run_dir = root / "runs" / "next"
    run_recipe(recipe, engine="local", output=run_dir, base=base)
    assert json.loads((run_dir / "stats.json").read_text())["incremental"]["base"] == str(base)
    return base, run_dir


def _report(bucket: Bucket, key: str) -> dict[str, bytes]:
    """The report objects under a run's key on the store, by path inside the report folder."""
    prefix = f"{bucket.name}/{key}/report/"
    return {path.removeprefix(prefix): bucket.fs.cat_file(path) for path in bucket.fs.find(prefix)}


def _files(root: Path) -> dict[str, bytes]:
    """Every file under a local report folder, by path inside it."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _local_report(run_dir: Path, uri: str) -> dict[str, bytes]:
    """The local run's report as it reads when the run is at `uri` (the report names its run directory)."""
    return {
        name: data.replace(str(run_dir).encode(), uri.encode())
        for name, data in _files(run_dir / "report").items()
    }


def _rebuild(bucket: Bucket, key: str) -> dict[str, bytes]:
    """Delete the report of the run at `key` on the store and rebuild it with `corpusmill report URI`."""
    bucket.fs.rm(f"{bucket.name}/{key}/report", recursive=True)
    assert _report(bucket, key) == {}
    result = runner.invoke(app, ["report", bucket.uri(key)])
    assert result.exit_code == 0, result.output
    assert f"report: {bucket.uri(key)}/report/index.html" in result.output
    return _report(bucket, key)


def test_report_rebuilds_a_run_on_object_storage_as_the_local_report(
    runs: tuple[Path, Path], s3_bucket: Bucket
) -> None:
    base, _ = runs
    key = f"{PREFIX}/same/runs/base"
    s3_bucket.upload(base, key)
    uri = s3_bucket.uri(key)
    rebuilt = _rebuild(s3_bucket, key)
    # The report's objects, the sample pages among them, and nothing written on the way.
    assert set(REPORT_FILES) <= set(rebuilt)
    assert any(name.startswith("samples/") for name in rebuilt)
    assert any(name.startswith("documents/") for name in rebuilt)
    assert rebuilt == _local_report(base, uri)
    data = json.loads(rebuilt["mixture.json"])
    assert data["run"]["run_dir"] == uri
    # Read from the store too: the unreadable input file, by name, from the run's skipped/ table.
    assert [f["file"] for f in data["skipped"]["failed_files"]] == ["bad.parquet"]
    assert {d["domain"] for d in data["mixtures"][0]["domains"]} == {"news", "shop", "science"}
    # The documents behind it were sampled from the store, as from the local copy.
    samples = json.loads(rebuilt["samples.json"])
    assert {c["key"] for c in samples["cells"] if c["kind"] == "domain"} == {"news", "shop", "science"}
    cells = {(c["kind"], c["key"]): c for c in samples["cells"]}
    assert cells[("domain", "news")]["documents"] and cells[("domain", "shop")]["documents"]
    # science has no weight: none of it is kept, all of it is in the mix stage's drops.
    assert not cells[("domain", "science")]["documents"]
    (excluded,) = [c for c in samples["cells"] if c["kind"] == "drop" and c["reason"] == "mix_excluded"]
    assert {d["lang"] for d in excluded["documents"]} == {"science"}  # the mix keys domains on `lang`


def test_a_run_on_object_storage_finds_its_base_beside_it(runs: tuple[Path, Path], s3_bucket: Bucket) -> None:
    base, run_dir = runs
    s3_bucket.upload(base, f"{PREFIX}/pair/runs/base")
    key = f"{PREFIX}/pair/runs/next"
    s3_bucket.upload(run_dir, key)
    rebuilt = _rebuild(s3_bucket, key)
    # The base was recorded as a local path; on the store it is found beside the run, by its name, and the
    # report's link to it is the same relative link as between the local runs.
    assert rebuilt == _local_report(run_dir, s3_bucket.uri(key))
    block = json.loads(rebuilt["mixture.json"])["incremental"]
    assert block["base"]["exists"] and block["base"]["source"] == "stats.json"
    assert block["base"]["link"] == "../../base/report/index.html"
    assert block["mixture_change"] and block["notes"] == []


def test_a_run_on_object_storage_without_its_base_says_where_it_looked(
    runs: tuple[Path, Path], s3_bucket: Bucket
) -> None:
    _, run_dir = runs
    key = f"{PREFIX}/alone/runs/next"
    s3_bucket.upload(run_dir, key)
    block = json.loads(_rebuild(s3_bucket, key)["mixture.json"])["incremental"]
    assert not block["base"]["exists"] and block["base"]["link"] is None and block["mixture_change"] == []
    (note,) = block["notes"]
    assert (
        f"is not beside this run on object storage (looked for at {s3_bucket.uri(PREFIX)}/alone/runs/base)"
        in note
    )


def test_report_of_a_missing_run_on_object_storage_fails_cleanly(s3_bucket: Bucket) -> None:
    result = runner.invoke(app, ["report", s3_bucket.uri(f"{PREFIX}/missing")])
    assert result.exit_code == 1
    assert "stats.json does not exist" in result.output


def test_plan_reads_the_accounting_of_a_run_on_object_storage(
    runs: tuple[Path, Path], s3_bucket: Bucket, tmp_path: Path
) -> None:
    base, _ = runs
    key = f"{PREFIX}/plan/runs/base"
    s3_bucket.upload(base, key)
    data = _recipe_data(base.parents[1] / "in", budget=5000)  # another budget than the run's
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    local = runner.invoke(app, ["plan", str(recipe), "--run", str(base)])
    remote = runner.invoke(app, ["plan", str(recipe), "--run", s3_bucket.uri(key)])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    assert "expected total: 5,000 tokens" in " ".join(local.output.split())
    # The same plan; only where the accounting came from differs (whitespace aside: a line may wrap elsewhere).
    assert "".join(remote.output.split()) == "".join(
        local.output.replace(str(base), s3_bucket.uri(key)).split()
    )
    missing = runner.invoke(app, ["plan", str(recipe), "--run", s3_bucket.uri(f"{PREFIX}/nothing")])
    assert missing.exit_code == 1 and "has no mixture accounting yet" in missing.output


def test_a_local_report_is_unchanged_by_a_rebuild(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """The local path still writes through temporaries renamed into place, to the same bytes as the run did."""
    base, _ = runs
    copy = tmp_path / "base"
    shutil.copytree(base, copy)
    shutil.rmtree(copy / "report")
    assert runner.invoke(app, ["report", str(copy)]).exit_code == 0
    assert _files(copy / "report") == _local_report(base, str(copy))  # nothing more, nothing less
